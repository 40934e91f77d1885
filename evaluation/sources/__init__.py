"""Real text of several domains beyond Debian descriptions, from pinned Debian packages.

modules, one job each:
- ``debs``: fetch a pinned .deb with apt, check its sha256, read files out of it;
- ``records``: the one record shape every source yields (query, passage, split group);
- ``dictionaries``: FOLDOC and WordNet, term → definition (keyword queries);
- ``manpages``: man pages, NAME summary → DESCRIPTION (synopsis queries), and whole pages;
- ``faq``: the Debian and Python FAQs, question → answer (question queries);
- ``domains``: the list of domains and their tasks, split like the Debian task.
"""
