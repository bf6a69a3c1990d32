"""Parity fixture for `post`: the post's own `get_ngram_similarity` on the shared cases.

    /tmp/parity-venv/bin/python benchmarks/protocol_parity/post.py GITDIR

GITDIR: a fetched nostalgebraist/nostalgebraist-autoresponder (needs `ngram` in the venv).
`diffusion_helpers.py` is executed with its image-reading imports stubbed; the gold is the
target's text, the candidate the transcript.
"""

from __future__ import annotations

import sys
import types

from cases import cases
from official import head_commit, official_source, stub_modules, write_fixture

PATH = "src/multimodal/diffusion_helpers.py"


def main(gitdir: str) -> None:
    commit = head_commit(gitdir)
    stub_modules("PIL", "multimodal", "multimodal.image_analysis", **{"PIL.Image": None})
    helpers = types.ModuleType("diffusion_helpers")
    exec(compile(official_source(gitdir, commit, PATH), PATH, "exec"), helpers.__dict__)
    rows = []
    for case in cases():
        similarity = helpers.get_ngram_similarity(case["target"]["text"], [case["transcript"]])
        rows.append({**case, "official": {"trigram": similarity[0]}})
    mean = sum(row["official"]["trigram"] for row in rows) / len(rows)
    name = "nostalgebraist/nostalgebraist-autoresponder"
    print(write_fixture("post", f"{name}@{commit} {PATH}", rows, {"trigram": mean}))


if __name__ == "__main__":
    main(sys.argv[1])
