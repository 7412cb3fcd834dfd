# Stage 1 on PASCAL VOC 2012 (GPU): ResNet-38 classifier, then CAMs with
#   python tools/train.py configs/cam_resnet38_voc.py
#   python tools/test.py configs/cam_resnet38_voc.py CKPT --cam-dir CAM_DIR
_base_ = [
    './_base_/models/cam_resnet38.py', './_base_/datasets/voc12_cls.py',
    './_base_/schedules/cam_8ep.py', './_base_/default_runtime.py'
]
