#!/usr/bin/env python3
"""Drive `cordon serve`'s TAXII 2.1 service with the reference clients:
taxii2-client (discovery, API root, collections, paging, add objects,
status) and the stix2 library's TAXIICollectionSource.

    reference_clients.py URL VIEWER_USER VIEWER_TOKEN WRITER_USER WRITER_TOKEN

Prints one JSON object with what it saw; exits non-zero on the first
check that fails."""

import json
import sys

from stix2 import Filter, TAXIICollectionSource
from taxii2client.exceptions import AccessError
from taxii2client.v21 import Collection, Server, as_pages

url, viewer, viewer_token, writer, writer_token = sys.argv[1:6]
out = {}

server = Server(url, user=viewer, password=viewer_token)
out["title"] = server.title
root = server.default
assert root is not None, "no default API root"
assert "application/taxii+json;version=2.1" in root.versions, root.versions
out["max_content_length"] = root.max_content_length
collections = {c.id: c for c in root.collections}
out["collections"] = {k: [c.can_read, c.can_write] for k, c in sorted(collections.items())}

# Every object of `findings`, one request each: each exactly once.
findings = collections["findings"]
whole = findings.get_objects()
expected = sorted(o["id"] for o in whole.get("objects", []))
assert not whole.get("more"), "the first page should hold everything"
paged = []
pages = 0
for envelope in as_pages(findings.get_objects, per_request=1):
    pages += 1
    paged += [o["id"] for o in envelope.get("objects", [])]
assert sorted(paged) == expected, "paging lost or repeated objects"
out["findings_objects"] = len(expected)
out["findings_pages"] = pages

# Manifest pages agree with the objects.
manifest = []
for envelope in as_pages(findings.get_manifest, per_request=7):
    manifest += [m["id"] for m in envelope.get("objects", [])]
assert sorted(manifest) == expected, "the manifest disagrees with the objects"

# The stix2 library's data source, by type and by id.
source = TAXIICollectionSource(findings)
indicators = source.query([Filter("type", "=", "indicator")])
assert indicators, "no indicators among the findings"
one = source.get(indicators[0].id)
assert one is not None and one.id == indicators[0].id
attack_patterns = source.query([Filter("type", "=", "attack-pattern")])
out["indicators"] = len(indicators)
out["attack_patterns"] = len(attack_patterns)
out["pattern"] = one.pattern

# A viewer may not write to intel.
intel_as_viewer = Collection(url + "cordon/collections/intel/", user=viewer, password=viewer_token)
try:
    intel_as_viewer.add_objects({"objects": []})
    raise AssertionError("a viewer wrote to intel")
except AccessError:
    out["viewer_write"] = "refused"

# A responder adds one good and one bad indicator: the good one is kept.
intel = Collection(url + "cordon/collections/intel/", user=writer, password=writer_token)
good = {
    "type": "indicator", "spec_version": "2.1",
    "id": "indicator--6f1f6c8e-5a0b-4c3f-8a52-6c1b0c2e9d41",
    "created": "2026-12-01T10:00:00.000Z", "modified": "2026-12-01T10:00:00.000Z",
    "name": "partner: C2 server", "pattern": "[ipv4-addr:value = '192.0.2.200']",
    "pattern_type": "stix", "valid_from": "2026-12-01T10:00:00Z",
}
bad = {"type": "indicator", "spec_version": "2.1", "id": "indicator--b1d2", "created": "yesterday"}
status = intel.add_objects({"objects": [good, bad]})
assert status.status == "complete", status.status
assert status.success_count == 1 and status.failure_count == 1, status._raw if hasattr(status, "_raw") else status
out["failure"] = status.failures[0]["message"]
again = intel.get_object(good["id"])
assert again["objects"][0]["id"] == good["id"]
status.refresh()
assert status.status == "complete"
out["status_id"] = status.id
print(json.dumps(out))
