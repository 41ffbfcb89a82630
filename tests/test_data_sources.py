"""open_nwb / DANDI addresses / streaming, with the HTTP layer mocked (never live network)."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
from data_helpers import generic_file, sha256

from irfa_nwb.data import load_dataset, open_nwb, parse_dandi_address, stack_presentations
from irfa_nwb.data.sources import DandiAddress, resolve_dandi_url
from irfa_nwb.errors import InputError

responses = pytest.importorskip("responses")
pytest.importorskip("dandi")
pytest.importorskip("remfile")

API = "https://api.dandiarchive.org/api"
ASSET_ID = "0a1b2c3d-1111-2222-3333-444455556666"
BLOB_URL = "https://dandiarchive.s3.amazonaws.com/blobs/abc/def/0a1b2c3d"
VERSION = "0.240101.1200"
PATH = "sub-1/sub-1_ses-1.nwb"


@pytest.fixture(scope="module")
def nwb_file(tmp_path_factory):
    return generic_file(tmp_path_factory.mktemp("remote") / "remote.nwb")


@pytest.fixture(autouse=True)
def _no_telemetry(monkeypatch):
    monkeypatch.setenv("DANDI_NO_ET", "1")  # no version check against the network


def _range_callback(payload: bytes, counter: dict):
    def callback(request):
        counter["n"] = counter.get("n", 0) + 1
        rng = request.headers.get("Range")
        if rng is None:
            return 200, {"Content-Length": str(len(payload))}, payload
        start, end = (int(v) for v in re.match(r"bytes=(\d+)-(\d+)", rng).groups())
        end = min(end, len(payload) - 1)
        body = payload[start : end + 1]
        return (
            206,
            {
                "Content-Length": str(len(body)),
                "Content-Range": f"bytes {start}-{end}/{len(payload)}",
            },
            body,
        )

    return callback


def _version(v):
    return {
        "version": v,
        "name": "test",
        "asset_count": 1,
        "size": 10,
        "created": "2024-01-01T00:00:00Z",
        "modified": "2024-01-01T00:00:00Z",
        "status": "Valid",
    }


def _serve_dandi(rs, payload, counter):
    rs.add(responses.GET, f"{API}/info/", status=404)
    dandiset = {
        "identifier": "000123",
        "created": "2024-01-01T00:00:00Z",
        "modified": "2024-01-01T00:00:00Z",
        "contact_person": "x",
        "embargo_status": "OPEN",
        "most_recent_published_version": _version(VERSION),
        "draft_version": _version("draft"),
    }
    rs.add(responses.GET, f"{API}/dandisets/000123/", json=dandiset)
    rs.add(
        responses.GET,
        re.compile(rf"{API}/dandisets/000123/versions/[^/]+/info/"),
        json={
            **_version(VERSION),
            "dandiset": dandiset,
            "metadata": {},
            "asset_validation_errors": [],
            "version_validation_errors": [],
        },
    )
    asset = {
        "asset_id": ASSET_ID,
        "path": PATH,
        "size": len(payload),
        "created": "2024-01-01T00:00:00Z",
        "modified": "2024-01-01T00:00:00Z",
        "blob": "abc",
        "zarr": None,
    }

    def list_assets(request):
        wanted = request.params.get("path")
        results = [asset] if wanted and PATH.startswith(wanted) else []
        return 200, {}, json.dumps({"count": len(results), "next": None, "results": results})

    rs.add_callback(
        responses.GET,
        re.compile(
            rf"{API}/dandisets/000123/versions/[^/]+/assets/"
            r"(\?.*)?$"
        ),
        callback=list_assets,
    )
    metadata = {"contentUrl": [f"{API}/assets/{ASSET_ID}/download/", BLOB_URL]}
    rs.add(
        responses.GET,
        re.compile(
            rf"{API}/(dandisets/000123/versions/[^/]+/)?assets/"
            rf"{ASSET_ID}/$"
        ),
        json=metadata,
    )
    rs.add(
        responses.HEAD,
        f"{API}/assets/{ASSET_ID}/download/",
        status=302,
        headers={"Location": BLOB_URL + "?X-Amz-Signature=secret"},
    )
    rs.add_callback(
        responses.GET,
        re.compile(re.escape(BLOB_URL) + r"(\?.*)?$"),
        callback=_range_callback(payload, counter),
    )
    rs.add_callback(
        responses.GET,
        f"{API}/assets/{ASSET_ID}/download/",
        callback=_range_callback(payload, counter),
    )


def test_parse_dandi_addresses():
    assert parse_dandi_address(
        "dandi://000021@0.210208.1450/sub-7/sub-7_ses-1.nwb"
    ) == DandiAddress("000021", "0.210208.1450", "sub-7/sub-7_ses-1.nwb")
    assert parse_dandi_address("dandi://000021/a/b.nwb") == DandiAddress("000021", None, "a/b.nwb")
    assert parse_dandi_address("dandi://DANDI/000713@draft/x.nwb") == DandiAddress(
        "000713", "draft", "x.nwb", "DANDI"
    )
    web = "https://dandiarchive.org/dandiset/000021/0.210208.1450/files?location=sub-7%2Fx.nwb"
    assert parse_dandi_address(web) == DandiAddress("000021", "0.210208.1450", "sub-7/x.nwb")
    assert parse_dandi_address("/data/file.nwb") is None
    with pytest.raises(InputError, match="unknown DANDI instance"):
        resolve_dandi_url("dandi://NOPE/000021/x.nwb")
    with pytest.raises(InputError, match="cannot parse DANDI address"):
        parse_dandi_address("dandi://21/x.nwb")
    with pytest.raises(InputError, match="not an NWB file"):
        parse_dandi_address("https://dandiarchive.org/dandiset/000021/draft/files?location=sub-7")


@responses.activate
def test_resolve_and_stream_dandi_address(nwb_file):
    payload = nwb_file["path"].read_bytes()
    counter: dict = {}
    _serve_dandi(responses.mock, payload, counter)
    url, prov = resolve_dandi_url(f"dandi://000123@{VERSION}/{PATH}")
    assert url == BLOB_URL  # redirect followed, signature query stripped
    assert prov["dandiset_id"] == "000123" and prov["dandiset_version"] == VERSION
    assert prov["asset_path"] == PATH and prov["asset_id"] == ASSET_ID
    ds = load_dataset(f"dandi://000123/{PATH}")  # no version: latest published
    np.testing.assert_array_equal(
        stack_presentations(ds).values, nwb_file["bin0"] + nwb_file["bin1"]
    )
    np.testing.assert_array_equal(ds["images"].values, nwb_file["pixels"])
    assert ds.attrs["source"] == f"dandi://000123@{VERSION}/{PATH}"
    assert ds.attrs["dandiset_version"] == VERSION and ds.attrs["url"] == BLOB_URL
    assert ds.attrs["nwb_identifier"] == "generic-0"
    assert counter["n"] >= 2


@responses.activate
def test_missing_asset_is_clear(nwb_file):
    _serve_dandi(responses.mock, nwb_file["path"].read_bytes(), {})
    with pytest.raises(InputError, match="DANDI has no asset 'sub-2/nope.nwb'"):
        resolve_dandi_url(f"dandi://000123@{VERSION}/sub-2/nope.nwb")


@responses.activate
def test_asset_download_url_streams_with_retry_and_cache(nwb_file, tmp_path):
    payload = nwb_file["path"].read_bytes()
    counter: dict = {}
    url = f"{API}/assets/{ASSET_ID}/download/"
    # the first request fails transiently (503); remfile / open_nwb retry
    responses.add(responses.GET, url, status=503)
    responses.add_callback(responses.GET, url, callback=_range_callback(payload, counter))
    cache = tmp_path / "cache"
    ds = load_dataset(url, cache_dir=cache)
    assert ds.attrs["asset_id"] == ASSET_ID
    np.testing.assert_array_equal(
        stack_presentations(ds).values, nwb_file["bin0"] + nwb_file["bin1"]
    )
    assert any(cache.rglob("*"))  # chunks were kept on disk
    n_first = counter["n"]
    ds2 = load_dataset(url, cache_dir=cache)
    assert counter["n"] - n_first <= 1  # second read served from the disk cache
    np.testing.assert_array_equal(ds2["responses"].values, ds["responses"].values)


@responses.activate
def test_permanent_http_error_is_not_retried_forever(nwb_file):
    url = "https://example.org/data/missing.nwb"
    responses.add(responses.GET, url, status=404)
    with pytest.raises(Exception, match="404"):
        with open_nwb(url):
            pass


def test_fsspec_backend_with_cache(nwb_file, tmp_path):
    before = sha256(nwb_file["path"])
    url = nwb_file["path"].resolve().as_uri()
    with open_nwb(url, backend="fsspec", cache_dir=tmp_path / "fcache") as nwb:
        assert nwb.identifier == "generic-0"
        assert len(nwb.units) == 4
    assert any((tmp_path / "fcache").iterdir())
    ds = load_dataset(url, backend="fsspec")
    np.testing.assert_array_equal(
        stack_presentations(ds).values, nwb_file["bin0"] + nwb_file["bin1"]
    )
    assert sha256(nwb_file["path"]) == before
    with pytest.raises(InputError, match="backend"):
        load_dataset("https://example.org/x.nwb", backend="ftp")


def test_bad_sources(tmp_path):
    with pytest.raises(InputError, match="folder"):
        load_dataset(tmp_path)
    with pytest.raises(InputError, match="must be a path"):
        load_dataset(123)
