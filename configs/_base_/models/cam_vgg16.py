# VGG-16 CAM classifier (AffinityNet's vgg16_cls: psa network/vgg16_cls.py).
_base_ = ['./cam_classifier.py']
# psa feeds VGG caffe's input: BGR, minus the ImageNet mean in BGR order, no
# std (vgg16d.Normalize); images are loaded as BGR, so no channel swap.
data_preprocessor = dict(
    mean=[104.008, 116.669, 122.675], std=[1.0, 1.0, 1.0], bgr_to_rgb=False)
model = dict(
    data_preprocessor=data_preprocessor,
    backbone=dict(
        type='VGG16d',
        out_indices=(2, ),  # relu(fc7), 1024 channels at stride 8
        fc6_dilation=1,  # the classifier's fc6 is not dilated (psa)
        dropout_fc6=0.5,
        # psa vgg16_cls freezes conv1_* and conv2_* (not_training)
        frozen_stages=1,
        # vgg16_20M.caffemodel through psa's convert_caffe_to_torch, then
        # tools/model_converters/psa_vgg2mmcyc.py
        init_cfg=dict(
            type='Pretrained',
            checkpoint='pretrain/vgg16d_imagenet.pth',
            prefix='backbone.')),
    dropout_ratio=0.5,  # psa drop7
    # psa vgg16_cls.forward_cam: sqrt(relu(fc8(x))), not ResNet-38's relu
    cam_activation='sqrt_relu')
