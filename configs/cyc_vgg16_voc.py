# Stage 2 with VGG-16 on PASCAL VOC 2012 (GPU): CyCSNet on image pairs of
# train_aug,
#   python tools/train.py configs/cyc_vgg16_voc.py
# from the stage-1 checkpoint of configs/cam_vgg16_voc.py named in the model
# config (F = VGG16d through fc7, see configs/_base_/models/cyc_vgg16.py; the
# DCFS statistic is the base model's, see configs/cyc_resnet38_voc.py).
_base_ = [
    './_base_/models/cyc_vgg16.py', './_base_/datasets/voc12_pairs.py',
    './_base_/schedules/cyc_8ep.py', './_base_/default_runtime.py'
]

# CAM_A from the CAMs stage 1 wrote instead of running the frozen classifier C
# every step, as in configs/cyc_resnet38_voc.py. Needs the CAM files of every
# train_aug image:
#   bash tools/dist_test.sh configs/cam_vgg16_voc.py \
#       work_dirs/cam_vgg16_voc/epoch_15.pth 8 --cam-dir work_dirs/cams \
#       --cfg-options \
#       test_dataloader.dataset.ann_file=ImageSets/Segmentation/train_aug.txt
# Then set model.cam_source='disk' (and optionally cam_classifier=None) and
# put LoadCAMFromFile in the train pipeline, as configs/cyc_resnet38_voc.py
# shows.
