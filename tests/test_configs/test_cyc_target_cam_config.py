"""configs/cyc_resnet38_synthvoc_target-cam.py: the default stage-2 config
with the propagation step restricted to B's CAM, and nothing else; its
pipeline config changes the CyCSNet stage only."""
from mmengine.config import Config

CONFIG = 'configs/cyc_resnet38_synthvoc_target-cam.py'
DEFAULT = 'configs/cyc_resnet38_synthvoc.py'


def test_only_the_target_cells_differ():
    cfg, default = Config.fromfile(CONFIG), Config.fromfile(DEFAULT)
    assert default.model.head.get('target_cells', 'all') == 'all'
    assert cfg.model.head.target_cells == 'cam'
    cfg.model.head.target_cells = 'all'
    default.model.head.target_cells = 'all'
    assert cfg.to_dict() == default.to_dict()


def test_pipeline_changes_only_stage_2():
    cfg = Config.fromfile('configs/pipeline_synthvoc_target-cam.py')
    default = Config.fromfile('configs/pipeline_synthvoc.py')
    assert cfg.cyc.config == CONFIG
    cfg.cyc.config = DEFAULT
    assert cfg.to_dict() == default.to_dict()
