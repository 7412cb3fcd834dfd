# CyCSNet (stage 2) with VGG-16: F = the classifier's VGG16d up to relu(fc7)
# (1024 channels at stride 8), initialised from the trained classifier C,
# which stays frozen and gives CAM_A (with its sqrt(relu(.)) CAM); the
# cycle-consistency head and L_cls at lambda = 0.1 (Eq. 13).
# Why fc7 (tap 2) and not conv5_3 (tap 1): ResNet-38's F drops only b7, the
# block that makes the CAM feature, and keeps b6's dilated, 2048-wide
# context; VGG16d's counterpart of b6 + b7 is fc6 + fc7, and without them F
# would be conv5_3 (512 channels), losing fc6's 3x3 context and every layer
# stage 1 trained beyond conv5. Tap 2 keeps all of C's backbone, so F is
# initialised from every backbone.* key of the stage-1 checkpoint (strictly,
# none missing), and its 1024 channels halve the refiner's feature bank
# against ResNet-38's 2048.
# the same data preprocessing as stage 1; the stage-3 refiner; the cycle head
_base_ = ['./cam_vgg16.py', './cam_refiner.py', './cycle_head.py']
model = dict(
    _delete_=True,
    type='CyCSNet',
    data_preprocessor={{_base_.data_preprocessor}},
    backbone=dict(
        type='VGG16d',
        out_indices=(2, ),
        fc6_dilation=1,  # C's fc6, so its weights fit
        dropout_fc6=0.5,
        frozen_stages=1),
    head={{_base_.cyc_head}},
    # C = the stage-1 model (configs/cam_vgg16_voc.py's, the model of this
    # file's _base_), resolved when the config is parsed; a leaf config
    # restates its own stage-1 config's model changes here. The checkpoint
    # (read by CyCSNet.init_weights, never when building) gives C the weights
    # it trained and also initialises F
    cam_classifier={{_base_.model}},
    cam_classifier_checkpoint='work_dirs/cam_vgg16_voc/epoch_15.pth',
    num_classes=20,
    dropout_ratio=0.5,
    loss_cls={{_base_.cyc_loss_cls}},
    return_shift={{_base_.cyc_return_shift}})
