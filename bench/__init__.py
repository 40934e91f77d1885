"""``python -m bench``: reranker-onnx against its peers on the same weights and the same real pairs.

Modules, one job each: ``models`` builds and caches the checkpoints and every engine's model folder,
``data`` draws the workload from Debian's English package descriptions, ``engines`` wraps each engine
behind one ``score(query, passages)`` call, ``worker`` measures one engine in a fresh process,
``procs`` starts it and reads its peak RSS, ``suite`` runs the comparison and the cost curves,
``profiling`` splits where reranker-onnx spends a call, ``experiments`` measures the runtime's defaults
against one change at a time (pad slack, token budget, threads, spinning, session settings), and
``report`` writes the markdown, JSON and PNG into ``results/bench/``.

Nothing here is imported by the runtime; heavy packages are imported inside the engine that needs them.
"""
