# LPCAM (Chen & Sun, CVPR 2023, arXiv 2303.10334) on PASCAL VOC 2012 (GPU):
# the stage-1 classifier's maps replaced by similarities to clustered local
# prototypes of its features (class prototypes minus context prototypes).
#   python tools/train.py configs/cam_resnet38_voc.py          # stage 1
#   python tools/test.py configs/cam_resnet38_voc.py CLS_CKPT --cam-dir CAMS
#   python tools/fit_lpcam.py configs/lpcam_resnet38_voc.py CLS_CKPT \
#       --cam-dir CAMS --out LPCAM.pth
#   python tools/test.py configs/lpcam_resnet38_voc.py LPCAM.pth \
#       --cam-dir LPCAM_CAMS --split ImageSets/Segmentation/train_aug.txt
# The LPCAM folder is then the --cam-dir of every later stage.
_base_ = ['./cam_resnet38_voc.py']
model = dict(
    type='LPCAM',
    # The public code's settings (step/make_lpcam.py), except where said.
    fit_cfg=dict(
        num_clusters=12,  # K, for the class and the context set alike
        cam_thr=0.1,  # class set CAM_c > 0.1, context set CAM_c < 0.1
        scale=1.0,  # fitting features: scale 1, no flip (save_feature)
        # A seeded uniform sample of at most 8192 vectors per (class, set),
        # where the public code clusters every vector of train: person
        # alone has ~10^6 context vectors at stride 8 (2.7 GB for all the
        # sets at D = 4096 in fp16); 8192 points give K = 12 centres
        # hundreds of points each.
        max_vectors=8192,
        class_thr=0.9,  # class prototypes: softmax(P W^T)_c > 0.9
        context_thr=(0.05, 0.9),  # context prototypes: 0.05 < p_c < 0.9
        # kmeans_pytorch has random init, no cap and stops at an absolute
        # shift (tol=5); ours: seeded k-means++, at most 100 Lloyd steps,
        # relative centre shift 1e-4 (a warning names a class that is
        # still moving then).
        max_iters=100,
        tol=1e-4,
        init='k-means++',
        seed=0,
        # a VOC class without a confident prototype means a broken
        # classifier or CAM folder: stop (the public code crashes there)
        missing_class_prototype='error'),
    # LPCAM maps are flat over whole objects (mean similarities, not peaky
    # logits), so the public code raises every downstream threshold above
    # IRN's (0.15 / 0.30 / 0.05 / 0.25). Its CAM eval threshold, 0.3, is
    # our background score (pseudo masks, IoUMetric).
    test_cfg=dict(bg_score=0.3))
# Its other thresholds, in IRN's terms, for a stage 4 on these maps. mmcyc's
# AffinityNet (configs/aff_resnet38_voc.py) makes its labels psa's way,
# (1 - max CAM)^alpha with alpha 4 / 32, and reads none of these: use them
# for an IRN-style stage 4 (confident fg above 0.45, bg below 0.25; random
# walk background 0.35), or re-tune alpha on the LPCAM maps.
lpcam_irn_thresholds = dict(
    cam_eval_thres=0.3, conf_fg_thres=0.45, conf_bg_thres=0.25,
    sem_seg_bg_thres=0.35)
