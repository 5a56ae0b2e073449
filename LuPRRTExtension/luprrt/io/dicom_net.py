"""Send DICOM files to a PACS or viewer with C-STORE (pynetdicom).

``luprrt export-dicom --send HOST:PORT`` uses :func:`send_files` after writing: one
association, every file offered in the transfer syntax it was written in, and a failure
(association refused, a store answered with an error status) raised as one line naming the
file and the status. DICOM PS3.4 B (Storage Service Class), PS3.7 9.1.1 (C-STORE).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pydicom

from ..provenance import ProgressCallback, no_progress


def parse_host_port(text: str) -> tuple[str, int]:
    """``"HOST:PORT"`` -> (host, port), with a clear error for anything else."""
    host, separator, port = text.rpartition(":")
    if not separator or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"--send {text!r}: expected HOST:PORT, e.g. 127.0.0.1:4242")
    return host, int(port)


def send_files(files: Sequence[str | Path], host: str, port: int, *, calling_aet: str = "LUPRRT",
               called_aet: str = "ANY-SCP", timeout_s: float = 30.0,
               progress: ProgressCallback | None = None) -> list[str]:
    """C-STORE ``files`` to ``host:port``; returns the SOP Instance UIDs stored.

    Raises
    ------
    ConnectionError
        The association was refused or aborted, or a store failed (status named).
    """
    from pynetdicom import AE

    progress = progress or no_progress
    datasets = [pydicom.dcmread(path) for path in files]
    ae = AE(ae_title=calling_aet)
    ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = timeout_s
    for sop_class, syntax in sorted({(str(ds.SOPClassUID), str(ds.file_meta.TransferSyntaxUID)) for ds in datasets}):
        ae.add_requested_context(sop_class, syntax)
    association = ae.associate(host, port, ae_title=called_aet)
    if not association.is_established:
        raise ConnectionError(f"C-STORE to {called_aet}@{host}:{port}: association refused or no answer "
                              f"(calling AE title {calling_aet}); check the address and that the PACS knows this AE")
    stored = []
    try:
        for index, (path, dataset) in enumerate(zip(files, datasets, strict=True)):
            status = association.send_c_store(dataset)
            code = getattr(status, "Status", None)
            if code is None or code not in (0x0000, 0xB000, 0xB007, 0xB006):
                raise ConnectionError(f"C-STORE of {path} to {host}:{port} failed (status "
                                      f"{'none' if code is None else hex(code)})")
            stored.append(str(dataset.SOPInstanceUID))
            progress((index + 1) / len(files), f"sent {Path(path).name}")
    finally:
        association.release()
    return stored


