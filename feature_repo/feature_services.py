"""Feature services, two per dataset, naming the same input features.

``<dataset>_serving``  window + calendar + scale: what the prediction service reads online.
``<dataset>_training`` the same three views plus the targets: what historical retrieval returns.
"""

from feast import FeatureService
from feature_views import views

from features.config import feature_datasets, names

for _dataset in feature_datasets():
    _n, _v = names(_dataset), views[_dataset]
    _inputs = [_v["window"], _v["calendar"], _v["scale"]]
    _tags = {"seqops.dataset": _dataset, "seqops.owner": "features"}
    globals()[_n.serving] = FeatureService(
        name=_n.serving,
        features=_inputs,
        description=f"{_dataset}: the model inputs for online serving.",
        tags={**_tags, "seqops.role": "serving"},
    )
    globals()[_n.training] = FeatureService(
        name=_n.training,
        features=[*_inputs, _v["targets"]],
        description=f"{_dataset}: the model inputs and the targets, for point-in-time training sets.",
        tags={**_tags, "seqops.role": "training"},
    )
