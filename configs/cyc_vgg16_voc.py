# Stage 2 with VGG-16 on PASCAL VOC 2012 (GPU): CyCSNet on image pairs of
# train_aug,
#   python tools/train.py configs/cyc_vgg16_voc.py
# from the stage-1 checkpoint of configs/cam_vgg16_voc.py named in the model
# config (F = VGG16d through fc7, see configs/_base_/models/cyc_vgg16.py).
_base_ = [
    './_base_/models/cyc_vgg16.py', './_base_/datasets/voc12_pairs.py',
    './_base_/schedules/cyc_8ep.py', './_base_/default_runtime.py'
]

# DCFS statistic (Eq. 9), as in the base model: beta2 follows the mean return
# probability W^b(x, y) over the beta1 candidates, not over V^sel
# (dcfs_statistic='selected', the paper's literal reading): the literal mean
# over V^sel ratchets beta2 until nothing is selected: measured |V^sel| -> 0
# within 5 epochs on the synthetic data; averaging over the beta1 candidates
# settles beta2 near the mean return probability
model = dict(head=dict(dcfs_statistic='candidates'))

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
