# The control of the main job: the same stages on SynthVOC's 'single-part'
# variant, where every instance's CAM already finds its class's one part and
# Cyc is not expected to help.
#   python tools/run_pipeline.py --config configs/pipeline_synthvoc_single.py \
#       --work-dir work_dirs/pipeline_single
_base_ = ['./pipeline_synthvoc.py']
data = dict(
    root='data/synthvoc_single',
    generator=dict(variant='single-part'))
