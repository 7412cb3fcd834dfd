# The cycle-consistency head of CyCSNet (stage 2, Eq. 3-11) and its L_cls,
# shared by every backbone's CyCSNet (cyc_resnet38.py, cyc_vgg16.py use them
# as model.head, model.loss_cls and model.return_shift).
cyc_head = dict(
    type='CycleConsistencyHead',
    alpha=20.0,  # Eq. 4 and 7 (paper: h*w ~ 3000 at 448^2)
    beta1=0.3,  # CAM_A threshold selecting V_(x,y)
    radius=5,  # r of Eq. 11, in squared-distance units
    # DCFS (Eq. 9): the statistic beta2 follows is the mean return
    # probability W^b(x, y) over all the beta1 candidates, not over V^sel
    # ('selected', the paper's literal reading, kept for the ablation): the
    # literal mean over V^sel ratchets beta2 until nothing is selected:
    # measured |V^sel| -> 0 within 5 epochs on the synthetic data; averaging
    # over the beta1 candidates settles beta2 near the mean return
    # probability
    dcfs_statistic='candidates',
    # the paper's Eq. 13 weighs L_cyc by 1; on the synthetic data every
    # weight tried (0.001-1) lowers F's part correspondence (README,
    # finding 3)
    loss_weight=1.0)
# L_cls of F's classification branch at lambda = 0.1 (Eq. 13)
cyc_loss_cls = dict(type='MultiLabelSoftMarginLoss', loss_weight=0.1)
# CyCSNet's return view: 0, the cycle returns to A itself (the paper);
# m > 0, it starts in one crop of A and returns to another offset by
# (+-m, +-m) cells, so that a feature map coding absolute position cannot
# solve it (README, finding 3: on the synthetic data that removes the
# positional code but not the drift of the references to the background)
cyc_return_shift = 0
