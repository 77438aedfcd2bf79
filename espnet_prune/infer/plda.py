"""PLDA for VBx: centre, length-normalise, LDA, length-normalise, then a two-covariance PLDA
whose transform makes the within-speaker covariance the identity and the between-speaker
covariance diagonal (``phi``). Estimated from labelled training embeddings or loaded from .npz.
The transform is that of pyannote.audio's ``vbx_setup`` with ``mean2`` stored divided by
sqrt(embedding dim) (test/infer/test_vbx_pyannote.py); pyannote has no estimation, only files."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.linalg import eigh

from espnet_prune.errors import CheckpointError, ConfigError, DataError

KEYS = ("mean1", "lda", "mean2", "plda_mu", "plda_tr", "phi")


def _l2(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-12)


def _scatter(x: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    mean = x.mean(0)
    within = np.zeros((x.shape[1], x.shape[1]))
    between = np.zeros_like(within)
    for label in np.unique(labels):
        group = x[labels == label]
        centred = group - group.mean(0)
        within += centred.T @ centred
        diff = group.mean(0) - mean
        between += len(group) * np.outer(diff, diff)
    within /= len(x)
    between /= len(x)
    within += 1e-6 * np.trace(within) / len(within) * np.eye(len(within))
    return within, between


@dataclass
class Plda:
    mean1: np.ndarray
    lda: np.ndarray  # [D, lda_dim]
    mean2: np.ndarray
    plda_mu: np.ndarray
    plda_tr: np.ndarray  # [lda_dim, lda_dim]
    phi: np.ndarray  # between-speaker variances, descending

    @property
    def lda_dim(self) -> int:
        return self.lda.shape[1]

    def xvector_transform(self, x: np.ndarray) -> np.ndarray:
        projected = _l2(x - self.mean1) @ self.lda
        return np.sqrt(self.lda_dim) * _l2(projected - self.mean2)

    def transform(self, x: np.ndarray) -> np.ndarray:
        """Embeddings [N, D] → PLDA space [N, lda_dim] (within-speaker covariance = I)."""
        if x.shape[-1] != len(self.mean1):
            raise DataError(
                f"embeddings have dimension {x.shape[-1]}, the PLDA expects {len(self.mean1)}"
            )
        return (self.xvector_transform(x) - self.plda_mu) @ self.plda_tr.T

    def save(self, path: str | Path) -> None:
        """Written atomically under exactly ``path`` (NumPy would append ``.npz`` to a name
        without it); a write error is one line naming it."""
        save_arrays(path, **{key: getattr(self, key) for key in KEYS})

    @classmethod
    def load(cls, path: str | Path) -> Plda:
        path = Path(path)
        if not path.is_file():
            raise CheckpointError(f"{path}: PLDA file does not exist")
        if path.stat().st_size == 0:
            raise CheckpointError(f"{path}: PLDA file is empty (0 bytes; an interrupted write?)")
        try:
            # plain arrays only: a pickled object array or a pickle file is refused, not loaded
            data = np.load(path, allow_pickle=False)
            if not isinstance(data, np.lib.npyio.NpzFile):
                raise CheckpointError(f"{path}: expected a .npz archive of the arrays "
                                      f"{', '.join(KEYS)} (written by diar_plda)")
            with data:
                missing = [key for key in KEYS if key not in data.files]
                if len(missing) == len(KEYS):
                    raise CheckpointError(f"{path}: not a PLDA file (an .npz archive of the "
                                          f"arrays {', '.join(KEYS)}, written by diar_plda)")
                if missing:
                    raise CheckpointError(f"{path}: PLDA file lacks key(s) {', '.join(missing)}")
                return cls(**{key: data[key].astype(np.float64) for key in KEYS})
        except CheckpointError:
            raise
        except Exception as exc:  # OSError, ValueError (pickled data), BadZipFile, EOFError
            if "pickle" in str(exc):
                raise CheckpointError(f"{path}: refusing to unpickle the PLDA file: it holds "
                                      "pickled Python objects, and only plain arrays are read "
                                      "(write it with diar_plda)") from None
            message = (str(exc).splitlines() or [type(exc).__name__])[0]
            raise CheckpointError(f"{path}: cannot read PLDA ({message})") from None


def save_arrays(path, **arrays) -> None:
    """``np.savez`` of ``arrays`` to exactly ``path``, atomically; errors name ``path``."""
    from espnet_prune.utils.io import atomic_write

    with atomic_write(path, make_parents=True) as tmp, open(tmp, "wb") as fh:
        np.savez(fh, **arrays)


def estimate_plda(embeddings: np.ndarray, speakers, lda_dim: int = 128) -> Plda:
    """Fit the LDA + PLDA chain on training embeddings with speaker labels.

    ``lda_dim`` is reduced to the embedding dimension when that is smaller.
    """
    x = np.asarray(embeddings, dtype=np.float64)
    labels = np.unique(np.asarray(speakers), return_inverse=True)[1]
    if labels.max() < 1:
        raise DataError("PLDA estimation needs embeddings of at least 2 speakers")
    if not np.isfinite(x).all():
        bad = int(np.flatnonzero(~np.isfinite(x).all(axis=1))[0])
        raise DataError(f"PLDA estimation needs finite embeddings: embedding {bad} (speaker "
                        f"{np.asarray(speakers)[bad]!r}) has NaN or inf values")
    lda_dim = min(lda_dim, x.shape[1])
    mean1 = x.mean(0)
    x1 = _l2(x - mean1)
    try:
        within, between = _scatter(x1, labels)
        values, vectors = eigh(between, within)
        lda = vectors[:, np.argsort(values)[::-1][:lda_dim]]
        projected = x1 @ lda
        mean2 = projected.mean(0)
        x2 = np.sqrt(lda_dim) * _l2(projected - mean2)
        plda_mu = x2.mean(0)
        within, between = _scatter(x2, labels)
        values, vectors = eigh(between, within)  # vectors.T @ within @ vectors = I
    except np.linalg.LinAlgError as exc:  # scipy's LinAlgError is NumPy's
        raise DataError(f"PLDA estimation failed: the within-speaker scatter of the "
                        f"{len(x)} embeddings is singular ({exc}); use more, varied "
                        "embeddings per speaker") from None
    order = np.argsort(values)[::-1]
    return Plda(mean1, lda, mean2, plda_mu, vectors[:, order].T, np.maximum(values[order], 0.0))


def single_speaker_spans(segments, min_length: float) -> dict[str, list[tuple[float, float]]]:
    """Per speaker, the stretches where only that speaker talks (at least ``min_length`` s)."""
    events = sorted({0.0} | {s.start for s in segments} | {s.end for s in segments})
    spans: dict[str, list[tuple[float, float]]] = {}
    for lo, hi in zip(events[:-1], events[1:]):
        middle = 0.5 * (lo + hi)
        talking = {s.speaker for s in segments if s.start <= middle < s.end}
        if len(talking) == 1:
            (speaker,) = talking
            own = spans.setdefault(speaker, [])
            if own and abs(own[-1][1] - lo) < 1e-6:
                own[-1] = (own[-1][0], hi)
            else:
                own.append((lo, hi))
    return {spk: [(a, b) for a, b in s if b - a >= min_length] for spk, s in spans.items()}


def embed_data_dir(data_dir: str, extractor, segment: float = 3.0, min_segment: float = 1.0,
                   max_segments_per_speaker: int = 50) -> tuple[np.ndarray, np.ndarray]:
    """Embeddings of the pieces (``segment`` s, the last at least ``min_segment`` s) of every
    reference speaker's single-speaker speech, and their ``<recording>/<speaker>`` labels."""
    from tqdm import tqdm

    from espnet_prune.utils.audio import read_audio
    from espnet_prune.utils.datadir import validate_data_dir

    data = validate_data_dir(data_dir, require_rttm=True)
    embeddings, speakers = [], []
    for rec in tqdm(data.recordings, desc="embeddings", unit="rec"):
        audio = read_audio(data.wavs[rec])
        for speaker, spans in sorted(single_speaker_spans(data.rttm.get(rec, []),
                                                          min_segment).items()):
            pieces = []
            for start, end in spans:
                edges = np.arange(start, end - min_segment + 1e-9, segment)
                for lo in edges:
                    hi = min(lo + segment, end)
                    pieces.append(audio[int(lo * 16000) : int(hi * 16000)])
            pieces = pieces[: max_segments_per_speaker]
            if pieces:
                embeddings.append(np.asarray(extractor(pieces)))
                speakers += [f"{rec}/{speaker}"] * len(pieces)
    if not embeddings:
        raise DataError(f"{data_dir}: no single-speaker speech of {min_segment} s "
                        "or more in the rttm")
    return np.concatenate(embeddings), np.asarray(speakers)


def load_embeddings(path: str) -> tuple[np.ndarray, np.ndarray]:
    """``embeddings [N, D]`` and ``speakers [N]`` of an .npz (``diar_plda --save_embeddings``)."""
    try:
        with np.load(path) as data:
            return np.asarray(data["embeddings"]), np.asarray(data["speakers"]).astype(str)
    except FileNotFoundError:
        raise DataError(f"{path}: embeddings file does not exist") from None
    except KeyError as exc:
        raise DataError(f"{path}: needs arrays 'embeddings' and 'speakers' ({exc})") from None
    except (OSError, ValueError) as exc:
        raise DataError(f"{path}: cannot read embeddings ({exc})") from None


def train_plda(output: str, data_dir: str | None = None, embeddings: str | None = None,
               lda_dim: int = 128, embedding: str = "resemblyzer", embedding_conf: str = "{}",
               segment: float = 3.0, min_segment: float = 1.0,
               max_segments_per_speaker: int = 50, save_embeddings: str | None = None) -> Plda:
    """``diar_plda``: the PLDA from a data dir's reference speakers (embedded with the extractor
    ``embedding``, options ``embedding_conf`` as YAML) or from an ``embeddings`` .npz, written
    to ``output``."""
    from espnet_prune.utils.io import check_output_file
    from espnet_prune.utils.values import Rule, check_value

    # every option and output checked before hours of embedding
    check_value(lda_dim, Rule(int, low=1), "diar_plda", "--lda_dim")
    check_value(segment, Rule(float, low=0.0, low_open=True), "diar_plda", "--segment")
    check_value(min_segment, Rule(float, low=0.0), "diar_plda", "--min_segment")
    check_value(max_segments_per_speaker, Rule(int, low=1), "diar_plda",
                "--max_segments_per_speaker")
    for path in (output, save_embeddings):
        if path:
            check_output_file(path, make_parents=True)
    if embeddings:
        vectors, speakers = load_embeddings(embeddings)
        source = embeddings
    else:
        import yaml

        from espnet_prune.infer.config_schema import embedding_rules
        from espnet_prune.infer.embeddings import EMBEDDINGS, build_embedding
        from espnet_prune.utils.config_file import yaml_error
        from espnet_prune.utils.values import check_mapping

        try:
            conf = yaml.safe_load(embedding_conf) or {}
        except yaml.YAMLError as exc:
            raise yaml_error(exc, "--embedding_conf", "the option") from None
        if not isinstance(conf, dict):
            raise ConfigError(f"--embedding_conf must be a mapping, got {embedding_conf!r}")
        if embedding in EMBEDDINGS:
            check_mapping(conf, embedding_rules(embedding), "--embedding_conf")
        vectors, speakers = embed_data_dir(
            data_dir, build_embedding(embedding, **conf), segment, min_segment,
            max_segments_per_speaker)
        source = data_dir
    if vectors.ndim != 2 or len(vectors) != len(speakers) or vectors.shape[1] == 0:
        raise DataError(f"{source}: expected embeddings [N, D] with N speaker labels, got "
                        f"{vectors.shape} and {len(speakers)} labels")
    if not np.issubdtype(vectors.dtype, np.number) or np.iscomplexobj(vectors):
        raise DataError(f"{source}: embeddings must be real numbers, got dtype {vectors.dtype}")
    if save_embeddings:
        save_arrays(save_embeddings, embeddings=vectors, speakers=speakers)
    try:
        plda = estimate_plda(vectors, speakers, lda_dim=lda_dim)
    except DataError as exc:
        raise DataError(f"{source}: {exc}") from None
    plda.save(output)
    print(f"PLDA from {len(vectors)} embeddings of {len(set(speakers.tolist()))} speakers "
          f"(LDA dim {plda.lda_dim}) -> {output}")
    return plda

