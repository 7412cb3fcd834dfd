# Stage 3 (tools/refine_cam.py): the stage-1 CAM of a target revised with the
# vectors of N training images sharing a class with it (Eq. 14, Alg. 2), with
# the features of a trained CyCSNet (cyc_<backbone>.py).
refiner = dict(
    type='CAMRefiner',
    # N: 128 is the paper's best with random walk (Table 4); Table 1 uses
    # 64 with and 16 without random walk
    num_refs=128,
    alpha=20.0,  # softmax scale of Eq. 4, as in training
    beta1=0.3,  # CAM threshold selecting the reference vectors, as in Alg. 1
    epsilon=2.0,  # epsilon of Eq. 14 (paper Sect. 4.1)
    bg_score=0.2,  # Bg of Eq. 14 and of the pseudo masks (paper)
    # K vectors kept per (image, class) in the feature bank: ~4 GB fp16 for
    # VOC train_aug at D = 2048 (ResNet-38's F; ~2 GB at VGG-16's D = 1024);
    # None keeps all (exactly Alg. 2's vectors)
    max_vectors_per_image=64,
    seed=0,  # the bank's subsets and each target's N images
    chunk_size=4096)  # vectors per product: ~50 MB fp32 at 56x56 positions
