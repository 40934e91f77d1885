"""The evaluation and training domains beyond Debian descriptions, each split like the Debian task.

A record becomes a ``Description`` (group as the package, a stable id as the md5, the query as the
synopsis, the passage as the body), so the Debian task's rules apply unchanged: identical passages are
stored once, a query shared by different passages is dropped as ambiguous, and the split is a hash of
the group, so every alias of a term or a page stays in one split.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from evaluation.sources.debs import Deb
from evaluation.sources.dictionaries import FOLDOC, WORDNET, foldoc, wordnet
from evaluation.sources.faq import DEBIAN_FAQ, PYTHON_FAQ, faq_records
from evaluation.sources.manpages import PACKAGES as MANPAGE_PACKAGES
from evaluation.sources.manpages import manpage_records
from evaluation.sources.records import Record
from evaluation.split import Split
from evaluation.tasks import Task, build_task
from export.debian import Description


@dataclass(frozen=True)
class Domain:
    name: str
    query_shape: str
    read: Callable[[Path | None], list[Record]]
    packages: tuple[Deb, ...]


DOMAINS: dict[str, Domain] = {
    d.name: d
    for d in (
        Domain("manpages", "synopsis (a man page's NAME summary)", manpage_records, MANPAGE_PACKAGES),
        Domain("foldoc", "keyword (a computing term)", foldoc, (FOLDOC,)),
        Domain("wordnet", "keyword (an English word)", wordnet, (WORDNET,)),
        Domain("faq", "question", faq_records, (DEBIAN_FAQ, PYTHON_FAQ)),
    )
}


def as_descriptions(records: list[Record]) -> list[Description]:
    return [Description(package=r.group, md5=r.md5, synopsis=r.query, body=r.passage) for r in records]


def records_sha256(records: list[Record]) -> str:
    """sha256 over every (key, query, passage): what the data of a domain was, for provenance."""
    digest = hashlib.sha256()
    for r in records:
        digest.update(f"{r.key}\0{r.query}\0{r.passage}\0".encode())
    return digest.hexdigest()


def domain_task(name: str, split: Split = "test", max_queries: int | None = None, cache: Path | None = None) -> Task:
    """The domain's task, with its packages, licences and data hash in the record."""
    domain = DOMAINS[name]
    records = domain.read(cache)
    provenance = {
        "input": {
            "domain": name,
            "query_shape": domain.query_shape,
            "packages": [{"package": d.package, "version": d.version, "sha256": d.sha256, "licence": d.licence}
                         for d in domain.packages],
            "records": len(records),
            "records_sha256": records_sha256(records),
        }
    }
    return build_task(as_descriptions(records), "en", split, max_queries, provenance=provenance, name=name)
