# CyCSNet (stage 2): F = the classifier's ResNet-38 without its last block
# (through b6: 2048 channels at stride 8), initialised from the trained
# classifier C, which stays frozen and gives CAM_A; the cycle-consistency head
# and L_cls at lambda = 0.1 (Eq. 13).
# the same data preprocessing as stage 1; the stage-3 refiner; the cycle head
_base_ = ['./cam_resnet38.py', './cam_refiner.py', './cycle_head.py']
model = dict(
    _delete_=True,
    type='CyCSNet',
    data_preprocessor={{_base_.data_preprocessor}},
    backbone=dict(
        type='ResNet38',
        with_b7=False,
        out_indices=(2, ),
        frozen_stages=1,
        norm_eval=True),
    head={{_base_.cyc_head}},
    # C = the stage-1 model (configs/cam_resnet38_voc.py's, the model of
    # this file's _base_), resolved when the config is parsed; a leaf config
    # restates its own stage-1 config's model changes here. The checkpoint
    # (read by CyCSNet.init_weights, never when building) gives C the weights
    # it trained and also initialises F
    cam_classifier={{_base_.model}},
    cam_classifier_checkpoint='work_dirs/cam_resnet38_voc/epoch_8.pth',
    num_classes=20,
    dropout_ratio=0.5,
    loss_cls={{_base_.cyc_loss_cls}},
    return_shift={{_base_.cyc_return_shift}})
