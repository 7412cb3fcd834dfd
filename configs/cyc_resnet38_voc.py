# Stage 2 on PASCAL VOC 2012 (GPU): CyCSNet on image pairs of train_aug,
#   python tools/train.py configs/cyc_resnet38_voc.py
# from the stage-1 checkpoint named in the model config.
_base_ = [
    './_base_/models/cyc_resnet38.py', './_base_/datasets/voc12_pairs.py',
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
# every step (faster, less GPU memory; the CAMs are then the multi-scale ones
# of stage 1, cropped and flipped with the image, instead of single-scale CAMs
# of the crop). Needs the CAM files of every train_aug image:
#   bash tools/dist_test.sh configs/cam_resnet38_voc.py \
#       work_dirs/cam_resnet38_voc/epoch_8.pth 8 --cam-dir work_dirs/cams \
#       --cfg-options \
#       test_dataloader.dataset.ann_file=ImageSets/Segmentation/train_aug.txt
# Then uncomment (adds to the model dict above):
# model.update(
#     cam_source='disk',
#     # optional: do not build C at all; F is still initialised from the
#     # backbone.* weights of cam_classifier_checkpoint
#     cam_classifier=None)
# train_pipeline = [
#     dict(type='LoadCheckedImageFromFile'),
#     # right after loading: the CAM files have the original image size
#     dict(type='LoadCAMFromFile', cam_dir='work_dirs/cams', num_classes=20),
#     # mmseg's Resize moves gt_cam too (nearest); mmcv's would not
#     dict(type='RandomResize', scale=(768, 448), ratio_range=(0.58, 1.0),
#          keep_ratio=True, resize_type='mmseg.Resize'),
#     dict(type='RandomCrop', crop_size=(448, 448)),
#     dict(type='RandomFlip', prob=0.5),
#     dict(type='PhotoMetricDistortion'),
#     dict(type='PackImageLabelInputs'),
# ]
# train_dataloader = dict(dataset=dict(dataset=dict(pipeline=train_pipeline)))
