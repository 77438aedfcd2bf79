"""Resumable downloads that check every file's size and name each one that is missing or short.

A re-run skips complete files, resumes partial ones (HTTP Range) and re-fetches any whose size
does not match the server's; at the end every file still missing or truncated is listed by name.
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterable
from pathlib import Path
from typing import BinaryIO, Protocol

log = logging.getLogger("download")
CHUNK = 1 << 20


class FetchError(Exception):
    """The file cannot be fetched at all (HTTP 404, no such local file, ...)."""


class Fetcher(Protocol):
    def size(self, url: str) -> int | None:
        """Byte size announced by the source (None when unknown); FetchError when absent."""

    def open(self, url: str, offset: int) -> tuple[BinaryIO, int]:
        """Stream from ``offset`` if the source can resume, else from 0; returns (stream, start)."""


class UrlFetcher:
    """http(s) through urllib (HEAD for the size, Range to resume); file:// and plain paths."""

    def __init__(self, timeout: float = 60.0):
        self.timeout = timeout

    @staticmethod
    def _local(url: str) -> Path | None:
        parsed = urllib.parse.urlparse(url)
        if parsed.scheme == "file":
            return Path(urllib.request.url2pathname(parsed.path))
        if parsed.scheme == "":
            return Path(url)
        return None

    def size(self, url: str) -> int | None:
        local = self._local(url)
        if local is not None:
            if not local.is_file():
                raise FetchError(f"{url}: no such file")
            return local.stat().st_size
        request = urllib.request.Request(url, method="HEAD")
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                length = response.headers.get("Content-Length")
        except urllib.error.HTTPError as exc:
            raise FetchError(f"{url}: HTTP {exc.code} {exc.reason}") from None
        except urllib.error.URLError as exc:
            raise FetchError(f"{url}: {exc.reason}") from None
        return int(length) if length is not None else None

    def open(self, url: str, offset: int) -> tuple[BinaryIO, int]:
        local = self._local(url)
        if local is not None:
            stream = open(local, "rb")
            stream.seek(offset)
            return stream, offset
        headers = {"Range": f"bytes={offset}-"} if offset else {}
        request = urllib.request.Request(url, headers=headers)
        try:
            response = urllib.request.urlopen(request, timeout=self.timeout)
        except urllib.error.HTTPError as exc:
            raise FetchError(f"{url}: HTTP {exc.code} {exc.reason}") from None
        except urllib.error.URLError as exc:
            raise FetchError(f"{url}: {exc.reason}") from None
        return response, offset if response.status == 206 else 0


def download_file(
    url: str, dest: str | Path, fetcher: Fetcher | None = None, retries: int = 3
) -> str:
    """Fetch ``url`` to ``dest``; returns "present" or "downloaded"; raises FetchError.

    Data goes to ``dest.part`` first and is renamed once its size matches the announced one.
    """
    fetcher = fetcher or UrlFetcher()
    dest = Path(dest)
    part = dest.with_name(dest.name + ".part")
    expected = fetcher.size(url)
    if dest.is_file():
        have = dest.stat().st_size
        if expected is None or have == expected:
            return "present"
        log.warning("%s: %d bytes on disk, %d expected; fetching again", dest, have, expected)
        if have < expected and not part.exists():
            os.replace(dest, part)  # resume from what is there
        else:
            dest.unlink()
    dest.parent.mkdir(parents=True, exist_ok=True)
    for attempt in range(1, retries + 1):
        offset = part.stat().st_size if part.exists() else 0
        if expected is not None and offset > expected:
            part.unlink()
            offset = 0
        try:
            stream, start = fetcher.open(url, offset)
            with stream, open(part, "ab" if start else "wb") as out:
                shutil.copyfileobj(stream, out, CHUNK)
        except FetchError:
            raise
        except OSError as exc:  # connection reset, timeout ...: keep the part, retry
            log.warning("%s: transfer interrupted (%s), attempt %d/%d", dest, exc, attempt,
                        retries)
        got = part.stat().st_size if part.exists() else 0
        if expected is None or got == expected:
            os.replace(part, dest)
            return "downloaded"
        log.warning("%s: truncated (%d of %d bytes), re-fetching (attempt %d/%d)",
                    dest, got, expected, attempt, retries)
        if attempt < retries:
            time.sleep(min(2**attempt, 30) if not url.startswith("file:") else 0)
    raise FetchError(f"{dest}: truncated ({got} of {expected} bytes) after {retries} attempts")


def download_all(
    items: Iterable[tuple[str, str | Path]], fetcher: Fetcher | None = None, retries: int = 3
) -> list[str]:
    """Fetch every ``(url, dest)``; returns one line per file still missing/truncated."""
    fetcher = fetcher or UrlFetcher()
    problems = []
    counts = {"present": 0, "downloaded": 0}
    items = list(items)
    for index, (url, dest) in enumerate(items, 1):
        try:
            status = download_file(url, dest, fetcher, retries)
            counts[status] += 1
            if status == "downloaded":
                log.info("[%d/%d] %s", index, len(items), dest)
        except FetchError as exc:
            kind = "truncated" if "truncated" in str(exc) else "missing"
            problems.append(f"{kind}: {dest} ({exc})")
            log.error("%s: %s", kind, exc)
    log.info("%d files already present, %d downloaded, %d problems",
             counts["present"], counts["downloaded"], len(problems))
    return problems


def fetch_archives(
    urls: list[str], target: str | Path, fetcher: Fetcher | None = None, retries: int = 3
) -> list[str]:
    """Download ``.tar.gz`` archives into ``target`` and extract each once (marker file).

    Returns the problems (missing/truncated archives, by name); a complete run writes
    ``target/.complete``.
    """
    import tarfile

    target = Path(target)
    target.mkdir(parents=True, exist_ok=True)
    items = [(url, target / Path(urllib.parse.urlparse(url).path).name) for url in urls]
    problems = download_all(items, fetcher, retries)
    if problems:
        return problems
    for _, archive in items:
        marker = target / f".{archive.name}.extracted"
        if marker.exists():
            continue
        log.info("extracting %s", archive)
        try:
            with tarfile.open(archive) as tar:
                tar.extractall(target, filter="data")
        except (tarfile.TarError, EOFError, OSError) as exc:
            problems.append(f"corrupt: {archive} ({exc}); delete it and re-run")
            continue
        marker.touch()
    if not problems:
        (target / ".complete").touch()
    return problems


def fetch_archives_reporting(target: str | Path, base_url: str, archives: Iterable[str]) -> int:
    """:func:`fetch_archives` of ``base_url/<archive>``; each problem on stderr; exit status."""
    urls = [f"{base_url.rstrip('/')}/{name}" for name in archives]
    problems = fetch_archives(urls, target)
    for line in problems:
        print("  " + line, file=sys.stderr)
    return 1 if problems else 0


def download_unless_complete(target: str | Path, base_url: str, archives: Iterable[str],
                             what: str) -> int:
    """The recipes' download step: nothing when ``target/.complete`` exists; exit status."""
    if (Path(target) / ".complete").is_file():
        return 0
    log.info("Downloading %s into %s", what, target)
    return fetch_archives_reporting(target, base_url, archives)


def archives_main(argv, description: str, corpus: str, base_url: str,
                  archives: Iterable[str]) -> int:
    """Command line of a corpus distributed as ``.tar.gz`` archives (``--dir``, ``--url``):
    exit status 1, with each problem named, unless every archive is fetched and extracted."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--dir", type=Path, required=True, help=f"download directory ({corpus})")
    parser.add_argument("--url", default=base_url, help="base URL (an OpenSLR mirror)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    return fetch_archives_reporting(args.dir, args.url, archives)
