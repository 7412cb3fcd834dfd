# AffinityNet's random walk at test time (psa infer_aff.py), shared by every
# backbone's AffinityNet (aff_resnet38.py, aff_vgg16.py use it as
# model.test_cfg).
aff_test_cfg = dict(
    bg_alpha=16,  # psa infer_aff.py --alpha: background (1 - max)^16
    stride=8,
    # psa infer_aff.py: beta 8, T squared logt = 8 times = 256 steps
    rw=dict(type='AffinityRWPostprocessor', radius=5, beta=8, steps=256))
