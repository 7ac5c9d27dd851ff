"""Class names of the registered datasets, in label order (what compile writes into a bundle's ONNX metadata).

digits, mnist, svhn: the digits "0".."9" (SVHN's label 10 is read as digit 0, data/loaders.py). fashion-mnist,
cifar10, cifar100: the names the datasets publish (cifar100: the 100 fine labels of its `meta` file, which are in
alphabetical order). tiny-imagenet: the WordNet ids of its wnids.txt, when the data folder can be read (the
loader numbers classes in that file's order). npz: none (the labels are the user's).
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

DIGITS = [str(i) for i in range(10)]

FASHION_MNIST = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
                 "Ankle boot"]

CIFAR10 = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]

CIFAR100 = [
    "apple", "aquarium_fish", "baby", "bear", "beaver", "bed", "bee", "beetle", "bicycle", "bottle",
    "bowl", "boy", "bridge", "bus", "butterfly", "camel", "can", "castle", "caterpillar", "cattle",
    "chair", "chimpanzee", "clock", "cloud", "cockroach", "couch", "crab", "crocodile", "cup", "dinosaur",
    "dolphin", "elephant", "flatfish", "forest", "fox", "girl", "hamster", "house", "kangaroo", "keyboard",
    "lamp", "lawn_mower", "leopard", "lion", "lizard", "lobster", "man", "maple_tree", "motorcycle", "mountain",
    "mouse", "mushroom", "oak_tree", "orange", "orchid", "otter", "palm_tree", "pear", "pickup_truck", "pine_tree",
    "plain", "plate", "poppy", "porcupine", "possum", "rabbit", "raccoon", "ray", "road", "rocket",
    "rose", "sea", "seal", "shark", "shrew", "skunk", "skyscraper", "snail", "snake", "spider",
    "squirrel", "streetcar", "sunflower", "sweet_pepper", "table", "tank", "telephone", "television", "tiger",
    "tractor", "train", "trout", "tulip", "turtle", "wardrobe", "whale", "willow_tree", "wolf", "woman", "worm",
]

FIXED = {"digits": DIGITS, "mnist": DIGITS, "svhn": DIGITS, "fashion-mnist": FASHION_MNIST, "cifar10": CIFAR10,
         "cifar100": CIFAR100}


def _tiny_imagenet_wnids(data_dir: Optional[str]) -> Optional[list[str]]:
    if not data_dir:
        return None
    d = Path(data_dir).expanduser()
    root = d / "tiny-imagenet-200" if (d / "tiny-imagenet-200").is_dir() else d
    try:
        return [w.strip() for w in (root / "wnids.txt").read_text().split() if w.strip()]
    except OSError:
        return None


def class_names(dataset: str, num_classes: int, data_dir: Optional[str] = None) -> Optional[list[str]]:
    """The names of labels 0..num_classes-1, or None where the dataset has none (or they cannot be read)."""
    names = FIXED.get(dataset)
    if dataset == "tiny-imagenet":
        names = _tiny_imagenet_wnids(data_dir)
    if names is None or len(names) != num_classes:
        return None
    return list(names)
