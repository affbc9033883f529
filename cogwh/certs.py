"""A throwaway local certificate authority (trustme) for the simulator, the demo's target servers
and the tests: real TLS on 127.0.0.1 with certificates made on the spot."""

from __future__ import annotations

import datetime as dt
import tempfile
from dataclasses import dataclass
from pathlib import Path

import trustme


@dataclass(frozen=True)
class CertFiles:
    cert: Path  # leaf + chain, PEM
    key: Path


class LocalCA:
    """Wraps :class:`trustme.CA`; writes PEM files under one temporary folder."""

    def __init__(self, folder: Path | None = None) -> None:
        self.ca = trustme.CA()
        self._tmp = None if folder else tempfile.TemporaryDirectory(prefix="cogwh-ca-")
        self.folder = folder or Path(self._tmp.name)  # type: ignore[union-attr]
        self.folder.mkdir(parents=True, exist_ok=True)
        self.ca_file = self.folder / "ca.pem"
        self.ca.cert_pem.write_to_path(str(self.ca_file))
        self._n = 0

    def issue(
        self,
        *hostnames: str,
        not_after: dt.datetime | None = None,
        not_before: dt.datetime | None = None,
    ) -> CertFiles:
        names = hostnames or ("localhost", "127.0.0.1")
        kwargs = {}
        if not_after is not None:
            kwargs["not_after"] = not_after
        if not_before is not None:
            kwargs["not_before"] = not_before
        leaf = self.ca.issue_cert(*names, **kwargs)
        self._n += 1
        cert = self.folder / f"leaf{self._n}.pem"
        key = self.folder / f"leaf{self._n}.key"
        leaf.private_key_and_cert_chain_pem.write_to_path(str(cert))
        leaf.private_key_pem.write_to_path(str(key))
        return CertFiles(cert, key)

    def close(self) -> None:
        if self._tmp is not None:
            self._tmp.cleanup()
