# Stage 2 on PASCAL VOC 2012 (GPU): CyCSNet on image pairs of train_aug,
#   python tools/train.py configs/cyc_resnet38_voc.py
# from the stage-1 checkpoint named in the model config.
_base_ = [
    './_base_/models/cyc_resnet38.py', './_base_/datasets/voc12_pairs.py',
    './_base_/schedules/cyc_8ep.py', './_base_/default_runtime.py'
]
