"""Training of the project's default English reranker on the train split of the Debian descriptions.

Light to import: torch and transformers load only inside the functions that train or save. Run it
with ``python -m training.default_model OUT_DIR``.
"""

from training.config import TrainConfig
from training.data import Example, TrainingData, build_examples, train_only_task

__all__ = ["Example", "TrainConfig", "TrainingData", "build_examples", "train_only_task"]
