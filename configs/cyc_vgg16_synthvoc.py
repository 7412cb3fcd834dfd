# Stage 2 with VGG-16 on the embedded synthetic dataset (CPU): CyCSNet from
# the stage-1 checkpoint of configs/cam_vgg16_synthvoc.py
# (tools/run_pipeline.py with configs/pipeline_synthvoc_vgg16.py sets
# model.cam_classifier_checkpoint to it). The DCFS statistic is the base
# model's (measured in configs/cyc_resnet38_synthvoc.py).
_base_ = [
    './_base_/models/cyc_vgg16.py', './_base_/datasets/synthvoc_pairs.py',
    './_base_/schedules/cyc_synthvoc_8ep.py', './_base_/default_runtime.py'
]
model = dict(
    data_preprocessor=dict(size=(96, 96)),
    # F mirrors the synthetic classifier's narrow, trainable VGG16d
    backbone=dict(widen_factor=0.125, norm_cfg=dict(type='BN'),
                  frozen_stages=-1, dropout_fc6=0.0),
    # C = the model of configs/cam_vgg16_synthvoc.py: its changes to the
    # base classifier, restated (C's data preprocessor and test_cfg are not
    # used; tests/test_configs/test_model_configs.py checks the rest agrees)
    cam_classifier=dict(
        backbone=dict(widen_factor=0.125, norm_cfg=dict(type='BN'),
                      frozen_stages=-1, dropout_fc6=0.0, init_cfg=None),
        dropout_ratio=0.0),
    cam_classifier_checkpoint='work_dirs/cam_vgg16_synthvoc/epoch_40.pth',
    dropout_ratio=0.0)
train_dataloader = dict(batch_size=8)  # pairs, i.e. 16 images a step
# stage 3 without random walk (Table 1's N); the whole bank (D = 128) is
# small, so keep every vector, as configs/cyc_resnet38_synthvoc.py
refiner = dict(num_refs=16, max_vectors_per_image=None)
