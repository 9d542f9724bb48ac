"""The Hugging Face hub, asked about at most once per process.

Before the first hub lookup (a model, processor or dataset named by a hub id that is not a local
path), one quick connection to the hub's host says whether it can be reached. If it cannot, this
process switches the hub clients (huggingface_hub, transformers, datasets) to offline mode, so a
cached copy is used at once and a missing one fails at once, instead of each client retrying each
file five times over about 25 s. One warning line says so. Behind a proxy the probe cannot tell,
so the clients are left to try.
"""

from __future__ import annotations

import functools
import logging
import os
import socket
import sys
from urllib.parse import urlparse

logger = logging.getLogger(__name__)

PROBE_SECONDS = 3.0
_PROXIES = ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy")


def hub_host() -> tuple[str, int]:
    """The hub's host and port (HF_ENDPOINT, else huggingface.co)."""
    url = urlparse(os.environ.get("HF_ENDPOINT") or "https://huggingface.co")
    return url.hostname or "huggingface.co", url.port or (443 if url.scheme != "http" else 80)


@functools.lru_cache(maxsize=1)
def _probe() -> bool:
    """True when the hub's host accepts a connection within PROBE_SECONDS (or a proxy is set)."""
    if any(os.environ.get(name) for name in _PROXIES):
        return True
    try:
        socket.create_connection(hub_host(), timeout=PROBE_SECONDS).close()
    except OSError:
        return False
    return True


def probe_failed() -> bool:
    """This process probed the hub, could not reach it and went offline."""
    return _probe.cache_info().currsize > 0 and not _probe()


def hub_usable() -> bool:
    """Whether hub lookups may use the network. The first call in a process that is not offline
    already probes the hub once; when it cannot be reached, every hub client in this process (and
    the processes it starts) works from the local cache from then on."""
    from huggingface_hub import constants

    if constants.HF_HUB_OFFLINE:
        return False
    if _probe():
        return True
    _go_offline()
    logger.warning("the hub (%s) cannot be reached; using the local Hugging Face cache only", hub_host()[0])
    return False


def _go_offline() -> None:
    from huggingface_hub import constants

    os.environ["HF_HUB_OFFLINE"] = "1"
    constants.HF_HUB_OFFLINE = True
    datasets_config = sys.modules.get("datasets.config")  # it copies the flag when it is imported
    if datasets_config is not None:
        datasets_config.HF_HUB_OFFLINE = True
