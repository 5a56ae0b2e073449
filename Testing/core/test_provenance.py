"""Provenance: SHA-256 of input files, the record stored next to every table, the silent progress callback.

Digests are checked against the test vectors of FIPS 180-2 (Appendix B, SHA-256 examples) and
against :mod:`hashlib` over the whole file read at once.
"""

from __future__ import annotations

import hashlib
import json
import platform
from datetime import datetime, timedelta, timezone

import numpy as np

from luprrt import __version__
from luprrt.provenance import file_sha256, inputs_sha256, no_progress, provenance_record

# FIPS 180-2, Appendix B.1 and B.2 (one-block and two-block messages); the empty message's digest
# is the well-known SHA-256 of zero bytes.
FIPS_VECTORS = {
    b"": "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    b"abc": "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
    b"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq":
        "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1",
}


def test_file_digest_matches_the_fips_180_2_vectors(tmp_path):
    for n, (message, digest) in enumerate(FIPS_VECTORS.items()):
        path = tmp_path / f"message{n}.bin"
        path.write_bytes(message)
        assert file_sha256(path) == digest
        assert file_sha256(path, chunk_bytes=5) == digest


def test_file_digest_covers_every_chunk(tmp_path):
    data = np.random.default_rng(4).integers(0, 256, 10_007, dtype=np.uint8).tobytes()
    path = tmp_path / "spect.dcm"
    path.write_bytes(data)
    expected = hashlib.sha256(data).hexdigest()
    for chunk_bytes in (1 << 20, 4096, 1000, 7):  # one chunk, several, a last partial one
        assert file_sha256(path, chunk_bytes=chunk_bytes) == expected
    path.write_bytes(data[:-1] + bytes([data[-1] ^ 1]))  # one bit of the last byte
    assert file_sha256(path, chunk_bytes=4096) != expected


def test_inputs_hash_every_file_under_folders_and_single_files(tmp_path):
    contents = {"patient/ct/CT_0000.dcm": b"ct slice", "patient/cycle1/spect.dcm": b"nm",
                "patient/cycle1/notes/readme.txt": b"", "segmentation.seg.nrrd": b"NRRD0004"}
    for name, data in contents.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(data)
    (tmp_path / "patient" / "empty_folder").mkdir()

    hashes = inputs_sha256([tmp_path / "patient", str(tmp_path / "segmentation.seg.nrrd")])

    assert hashes == {str(tmp_path / name): hashlib.sha256(data).hexdigest()
                      for name, data in sorted(contents.items())}
    assert list(hashes) == sorted(hashes)  # files in path order
    assert inputs_sha256([]) == {}


def test_record_names_software_version_time_inputs_and_parameters():
    inputs = {"ct": "ab" * 32}
    parameters = {"margin_mm": 5.0, "method": "cantlie"}
    before = datetime.now(timezone.utc).replace(microsecond=0)
    record = provenance_record(inputs, parameters)
    after = datetime.now(timezone.utc)

    assert set(record) == {"software", "version", "python", "created_utc", "inputs", "parameters"}
    assert (record["software"], record["version"]) == ("luprrt", __version__)
    assert record["python"] == platform.python_version()
    created = datetime.fromisoformat(record["created_utc"])
    assert created.utcoffset() == timedelta(0) and before <= created <= after
    assert record["created_utc"].endswith("+00:00") and "." not in record["created_utc"]  # whole seconds
    assert (record["inputs"], record["parameters"]) == (inputs, parameters)
    record["parameters"]["margin_mm"] = 0.0  # a copy: the caller's dict is unchanged
    assert parameters["margin_mm"] == 5.0
    assert json.loads(json.dumps(record)) == record
    assert provenance_record()["inputs"] == provenance_record()["parameters"] == {}


def test_no_progress_accepts_the_progress_arguments_and_does_nothing():
    assert no_progress(0.0, "start") is None
    assert no_progress(1.0, "done") is None
