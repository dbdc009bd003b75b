"""Feature services, two per dataset, naming the same input features.

``<dataset>_serving``  window + calendar + scale: what the prediction service reads online.
``<dataset>_training`` the same three views plus the targets: what historical retrieval returns.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from feast import FeatureService, FeatureView

    from seqops.feature_repo.names import FeatureNames


def services(n: FeatureNames, views: dict[str, FeatureView]) -> list[FeatureService]:
    from feast import FeatureService

    inputs = [views["window"], views["calendar"], views["scale"]]
    tags = {"seqops.dataset": n.dataset, "seqops.owner": "features"}
    return [
        FeatureService(
            name=n.serving,
            features=inputs,
            description=f"{n.dataset}: the model inputs for online serving.",
            tags={**tags, "seqops.role": "serving"},
        ),
        FeatureService(
            name=n.training,
            features=[*inputs, views["targets"]],
            description=f"{n.dataset}: the model inputs and the targets, for point-in-time training sets.",
            tags={**tags, "seqops.role": "training"},
        ),
    ]
