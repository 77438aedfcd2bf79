"""espnet-prune: fine-tune before structured pruning of WavLM for EEND speaker diarization.

Importing this package is cheap: it installs a post-import hook (see
:mod:`espnet_prune.registration`) so that the plugin's s3prl upstream and ESPnet class
choices are registered the moment s3prl/ESPnet are imported, without importing them here.
"""

from espnet_prune import registration as _registration

__version__ = "0.1.0"

_registration.install()
