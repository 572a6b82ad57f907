"""``gan study GRID.yaml``: train a grid of variants x seeds of one base config as separate processes, score every
run with ``gan eval`` under the grid's protocols, and write a report grouped by variant.

Re-running the same command continues an interrupted study: finished runs and evaluations are skipped, an
interrupted run resumes from its last checkpoint. Output: ``<out_dir>/<study>/<variant>-s<seed>/`` (one gan fit
run each), ``configs/`` (each run's config), ``logs/`` (each job's output), ``report.md``, ``fid_vs_step.png``
and ``spectral_norms.png``. With ``--train-only`` it trains and stops: train where the GPU is (no Inception weights
needed), copy the study folder back, and the same command without the flag scores and reports.

``--launcher slurm`` submits every training and evaluation as a SLURM job through submitit (resources from the
grid's ``slurm:`` section or the flags below) and waits for them; ``--launcher submitit-local`` runs the same jobs
with submitit's local executor. ``--export DIR`` copies the small result files the report reads (no checkpoints)
to ``DIR/<study>/``; ``--report-only --out-dir DIR`` rewrites the report from such a copy, and ``--update-doc
README.md`` rewrites the study's table in README between its markers (:mod:`gan.study.doc_tables`). See
docs/studies.md.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from gan.errors import UserError


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="gan study", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("grid", help="a study grid, e.g. configs/studies/fashion_mnist_norms.yaml")
    p.add_argument("--jobs", type=int, help="processes at once (default: one per GPU, else one per CPU core)")
    p.add_argument("--threads", type=int, default=1, help="torch threads per process (default 1)")
    p.add_argument("--out-dir", help="parent folder of studies (default: the grid's out_dir, checkpoints/studies)")
    p.add_argument("--dry-run", action="store_true", help="print the jobs still to do and stop")
    p.add_argument("--report-only", action="store_true", help="write the report from what is on disk")
    p.add_argument("--train-only", action="store_true",
                   help="train the runs and stop (score them later, e.g. on a machine with Inception weights)")
    p.add_argument("--launcher", default="local",
                   help="local (processes on this machine, the default), slurm (a SLURM job per training and "
                        "evaluation through submitit) or submitit-local (those jobs on this machine)")
    p.add_argument("--export", metavar="DIR",
                   help="copy the small result files of every run (eval JSON, metrics CSV, monitor jsonl, configs; "
                        "no checkpoints) to DIR/<study>/ and stop; --report-only --out-dir DIR reports from them")
    p.add_argument("--update-doc", metavar="FILE", action="append", default=[],
                   help="after the report, rewrite this study's table between the '<!-- gan study: NAME -->' markers "
                        "of FILE (e.g. README.md); repeatable")
    cluster = p.add_argument_group("slurm resources (override the grid's slurm: section)")
    cluster.add_argument("--partition")
    cluster.add_argument("--gpus", type=int, dest="gpus_per_run", help="GPUs per training run (default 1)")
    cluster.add_argument("--cpus", type=int, dest="cpus_per_task", help="CPUs per task")
    cluster.add_argument("--time", type=int, dest="time_min", metavar="MINUTES", help="time limit of each job")
    cluster.add_argument("--account")
    cluster.add_argument("--constraint")
    args = p.parse_args(argv)
    if args.jobs is not None and args.jobs < 1:
        raise UserError(f"--jobs {args.jobs}: must be >= 1")
    if args.threads < 1:
        raise UserError(f"--threads {args.threads}: must be >= 1")
    if args.update_doc and (args.train_only or args.dry_run or args.export):
        raise UserError("--update-doc needs a report: drop --train-only / --dry-run / --export")
    if args.train_only and args.report_only:
        raise UserError("--train-only and --report-only exclude each other: train first, report after")
    from gan.study.cluster import LAUNCHERS

    if args.launcher not in LAUNCHERS:
        raise UserError(f"--launcher {args.launcher!r} is not known; choose one of {', '.join(LAUNCHERS)}")
    flags = {k: getattr(args, k) for k in ("partition", "gpus_per_run", "cpus_per_task", "time_min", "account",
                                           "constraint")}
    for key in ("gpus_per_run", "cpus_per_task", "time_min"):
        if flags[key] is not None and flags[key] < (0 if key == "gpus_per_run" else 1):
            raise UserError(f"--{key}: {flags[key]} is not a valid count")
    if args.launcher != "local" and args.jobs is not None:
        raise UserError(f"--jobs is for the local launcher; with {args.launcher} every ready job is submitted at once "
                        "(slurm: limit it with slurm.array_parallelism)")
    if args.launcher == "local" and any(v is not None for v in flags.values()):
        raise UserError("slurm resources (--partition, --gpus, ...) need --launcher slurm or submitit-local")

    from gan.study.grid import load_grid
    from gan.study.report import read_runs, write_report
    from gan.study.runner import default_jobs, execute

    grid = load_grid(args.grid, args.out_dir)
    if args.update_doc:
        from gan.study.doc_tables import check_doc

        for doc in args.update_doc:  # now, not after hours of training
            check_doc(Path(doc), grid.name)
    if args.export:
        from gan.study.export import export_results

        copied = export_results(grid, Path(args.export))
        print(f"exported {copied} file(s) of {grid.name} to {Path(args.export) / grid.name}")
        return 0
    failed = []
    if not args.report_only:
        if args.launcher == "local":
            jobs = args.jobs or default_jobs(args.threads)
            print(f"study {grid.name}: {grid.describe()} in {grid.dir}, {jobs} process(es) at once, "
                  f"{args.threads} thread(s) each", flush=True)
            failed = execute(grid, jobs, args.threads, args.dry_run, evaluate=not args.train_only)
        else:
            from gan.study import cluster

            res = cluster.resources(grid, flags)
            print(f"study {grid.name}: {grid.describe()} in {grid.dir}, jobs through submitit ({args.launcher}), "
                  f"{args.threads} thread(s) each", flush=True)
            failed = cluster.execute(grid, args.launcher, res, args.threads, args.dry_run,
                                     evaluate=not args.train_only)
        if args.dry_run:
            return 0
    if not args.train_only:
        grid_runs = grid.runs()
        present = [run.dir for run in grid_runs if run.dir.is_dir()]
        if args.report_only and not present:  # a mistyped --out-dir must not blank the report and README's table
            raise UserError(f"--report-only: no run of study {grid.name} in {grid.dir}; give --out-dir the folder "
                            "the study trained into (or run the study first)")
        runs = read_runs(present)
        text = write_report(runs, grid.dir, grid.name)
        print(text)
        print(f"report: {grid.dir / 'report.md'}")
        missing = len(grid_runs) - len(present)
        if args.update_doc and failed:
            print("--update-doc: not done, since jobs failed (the table would lack their runs)")
        elif args.update_doc and missing:
            print(f"--update-doc: not done, since {missing} of the grid's {len(grid_runs)} runs have no folder in "
                  f"{grid.dir} (the table would lack them); train them first")
            return 1
        elif args.update_doc:
            from gan.study.doc_tables import update_doc
            from gan.study.report import study_table

            table = study_table(runs)
            for doc in args.update_doc:
                changed = update_doc(Path(doc), grid.name, table)
                print(f"{doc}: table of {grid.name} {'rewritten' if changed else 'already up to date'}")
    if failed:
        print(f"{len(failed)} job(s) failed: " + ", ".join(str(job.log_path(grid)) for job in failed))
        return 1
    return 0


if __name__ == "__main__":
    import sys

    sys.exit(main(sys.argv[1:]))
