"""symdl's benchmarks: training-step speed against hand-written numpy and other frameworks,
and generation time. Run ``python benchmarks/run_all.py``; not part of the installed package."""
