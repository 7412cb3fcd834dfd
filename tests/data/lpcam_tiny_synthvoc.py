# A tiny LPCAM config for the tool tests: the tiny stage-1 model of
# cam_tiny_synthvoc.py with LPCAM's maps (3 clusters; the barely trained
# classifier is never 90 % sure, so the best centre is kept).
_base_ = ['./cam_tiny_lpcam.py']
model = dict(
    type='LPCAM',
    fit_cfg=dict(num_clusters=3, missing_class_prototype='most_confident'))
