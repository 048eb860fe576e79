"""Input pipelines: tensorflow-datasets (prepared on first use), Debian's Fashion-MNIST IDX files, image folders.

Sources yield unbatched `(uint8 image, int label)` examples; `make_pipeline`
turns them into batched float32 training or evaluation data with core Keras
augmentation layers running inside `tf.data` (not in the model, so the
exported models stay free of training-only layers).

    sources.py       the dataset table, the loaders, the download-host probe, clean-up of failed downloads
    augmentation.py  the augmentation names and AutoAugment's CIFAR-10 policy
    pipeline.py      make_pipeline, batch size and steps per epoch, k-fold, a run's data from its TrainConfig

The names below are the package's API: `from keras_motivation import data`, then `data.make_pipeline(...)`.
"""

from keras_motivation.data.augmentation import AUGMENTATIONS
from keras_motivation.data.augmentation import AUTOAUGMENT_CIFAR10
from keras_motivation.data.pipeline import count_examples
from keras_motivation.data.pipeline import hold_out_batch
from keras_motivation.data.pipeline import input_shape
from keras_motivation.data.pipeline import kfold_indices
from keras_motivation.data.pipeline import load_data
from keras_motivation.data.pipeline import make_datasets
from keras_motivation.data.pipeline import make_pipeline
from keras_motivation.data.pipeline import split_for_replicas
from keras_motivation.data.pipeline import steps_per_epoch
from keras_motivation.data.pipeline import uses_one_hot
from keras_motivation.data.sources import DATASETS
from keras_motivation.data.sources import FASHION_MNIST_DIRS
from keras_motivation.data.sources import IMAGE_EXTENSIONS
from keras_motivation.data.sources import IMAGE_FOLDER
from keras_motivation.data.sources import DatasetUnavailableError
from keras_motivation.data.sources import dataset_info
from keras_motivation.data.sources import download_hosts
from keras_motivation.data.sources import image_folder_classes
from keras_motivation.data.sources import load_fashion_mnist_idx
from keras_motivation.data.sources import load_image_folder
from keras_motivation.data.sources import load_tfds
from keras_motivation.data.sources import unreachable_hosts
