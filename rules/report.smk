rule table:
    input:
        summaries=get_table_summaries,
        paper=get_resource("paper_results.csv"),
        code=get_library_sources("report.tables"),
    output:
        csv=report(
            "results/tables/{table}.csv",
            caption="../workflow/report/table.rst",
            category="Tables",
            labels=lambda w: get_table_labels(w, "csv"),
        ),
        md=report(
            "results/tables/{table}.md",
            caption="../workflow/report/table.rst",
            category="Tables",
            labels=lambda w: get_table_labels(w, "md"),
        ),
        tex=report(
            "results/tables/{table}.tex",
            caption="../workflow/report/table.rst",
            category="Tables",
            labels=lambda w: get_table_labels(w, "tex"),
        ),
    log:
        "logs/table/{table}.log",
    conda:
        "../envs/report.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=5,
    params:
        table=get_table_config,
        variants=get_table_variants,
        protocols=config["evaluation"]["protocols"],
    script:
        "../workflow/scripts/table.py"


rule step_plot:
    input:
        unpack(get_step_plot_summaries),
        paper=get_resource("step_curve.csv"),
        code=get_library_sources("report.plots"),
    output:
        png=report(
            "results/plots/steps.png",
            caption="../workflow/report/steps.rst",
            category="Plots",
            labels=get_step_plot_labels("png"),
        ),
        pdf=report(
            "results/plots/steps.pdf",
            caption="../workflow/report/steps.rst",
            category="Plots",
            labels=get_step_plot_labels("pdf"),
        ),
    log:
        "logs/step_plot/steps.log",
    conda:
        "../envs/report.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=5,
    params:
        ratio=config["step_plot"]["ratio"],
        steps=config["step_plot"]["steps"],
        protocols=config["evaluation"]["protocols"],
    script:
        "../workflow/scripts/step_plot.py"


rule variant_table:
    input:
        summaries=get_variant_table_summaries,
        code=get_library_sources("report.tables"),
    output:
        csv=report(
            "results/tables/{vtable}.csv",
            caption="../workflow/report/variant_table.rst",
            category="Tables",
            labels=lambda w: {"table": w.vtable, "format": "csv"},
        ),
        md=report(
            "results/tables/{vtable}.md",
            caption="../workflow/report/variant_table.rst",
            category="Tables",
            labels=lambda w: {"table": w.vtable, "format": "md"},
        ),
        tex=report(
            "results/tables/{vtable}.tex",
            caption="../workflow/report/variant_table.rst",
            category="Tables",
            labels=lambda w: {"table": w.vtable, "format": "tex"},
        ),
    log:
        "logs/variant_table/{vtable}.log",
    conda:
        "../envs/report.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=5,
    params:
        table=lambda w: config["variant_tables"][w.vtable],
        variants=get_active_variants(),
        variant_cfgs={v: config["variants"][v] for v in get_active_variants()},
        protocols=config["evaluation"]["protocols"],
    script:
        "../workflow/scripts/variant_table.py"


rule cost_table:
    input:
        paper=get_resource("paper_cost.csv"),
        code=get_library_sources("report.cost", "report.tables", "nets"),
    output:
        csv=report(
            "results/tables/table5b.csv",
            caption="../workflow/report/cost_table.rst",
            category="Tables",
            labels={"table": "table5b", "format": "csv"},
        ),
        md=report(
            "results/tables/table5b.md",
            caption="../workflow/report/cost_table.rst",
            category="Tables",
            labels={"table": "table5b", "format": "md"},
        ),
        tex=report(
            "results/tables/table5b.tex",
            caption="../workflow/report/cost_table.rst",
            category="Tables",
            labels={"table": "table5b", "format": "tex"},
        ),
    log:
        "logs/cost_table/table5b.log",
    benchmark:
        "benchmarks/out/cost_table/table5b.tsv"
    conda:
        "../envs/torch.yaml"
    threads: 4
    resources:
        mem_mb=8000,
        runtime=30,
        gpu=1,
    params:
        cost=config["cost_table"],
    script:
        "../workflow/scripts/cost_table.py"


##### provenance and the HTML report's figures #####


# what each table was made from: commit, config hash, checkpoint and dataset checksums;
# rerun whenever the table is (and when the config changes: it is a param)
rule table_provenance:
    input:
        unpack(get_table_provenance_inputs),
        tables=expand("results/tables/{{ptable}}.{ext}", ext=["csv", "md", "tex"]),
        code=get_library_sources("provenance"),
    output:
        json=report(
            "results/tables/{ptable}.provenance.json",
            caption="../workflow/report/provenance.rst",
            category="Tables",
            labels=lambda w: {"table": w.ptable, "format": "provenance"},
        ),
    log:
        "logs/table_provenance/{ptable}.log",
    wildcard_constraints:
        ptable="|".join(get_provenance_tables()),
    conda:
        "../envs/torch.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
    params:
        variants=get_table_provenance_variants,
        run_config=config,
        repo=os.path.relpath(workflow.basedir),
    script:
        "../workflow/scripts/table_provenance.py"


# input, baseline, ours after each step and ground truth per scene of the step plot's set
rule scene_grids:
    input:
        unpack(get_scene_grid_inputs),
        code=get_scene_grid_sources,
    output:
        grids=report(
            directory("results/report/scene_grids"),
            patterns=["{scene}.png"],
            caption="../workflow/report/scene_grids.rst",
            category="Images",
            labels={
                "scene": "{scene}",
                "dataset": config["step_plot"]["dataset"],
                "ratio": config["step_plot"]["ratio"],
            },
        ),
    log:
        "logs/scene_grids/scene_grids.log",
    conda:
        "../envs/torch.yaml"
    threads: 2
    resources:
        mem_mb=8000,
        runtime=60,
    params:
        baseline=get_step_plot_variant("baseline"),
        ours=get_step_plot_variant("variant"),
        ratio=config["step_plot"]["ratio"],
        n_steps=max(config["step_plot"]["steps"]),
        # the grids show one protocol: the paper's oracle one when it is configured
        oracle="oracle" in config["evaluation"]["protocols"],
        seed=config["evaluation"]["seed"],
        eld_ratio=config["evaluation"]["eld_ratio"],
        # each network as its evaluation pads it (its recipe's eval_padding)
        padding={
            "baseline": eval_padding(config, config["step_plot"]["baseline"]),
            "ours": eval_padding(config, config["step_plot"]["variant"]),
        },
        compute=config["compute"],
    script:
        "../workflow/scripts/scene_grids.py"


rule training_curves:
    input:
        logs=get_train_logs,
        code=get_library_sources("report.figures"),
    output:
        png=report(
            "results/report/training_curves.png",
            caption="../workflow/report/training_curves.rst",
            category="Training",
            labels={"figure": "training loss"},
        ),
    log:
        "logs/training_curves/training_curves.log",
    conda:
        "../envs/torch.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        variants=get_active_variants(),
        methods={
            name: config["variants"][name]["method"] for name in get_active_variants()
        },
    script:
        "../workflow/scripts/training_curves.py"


rule runtime:
    input:
        unpack(get_runtime_inputs),
        code=get_library_sources("report.figures"),
    output:
        csv=report(
            "results/report/runtime.csv",
            caption="../workflow/report/runtime.rst",
            category="Runtime",
            labels={"table": "runtime per job", "format": "csv"},
        ),
        png=report(
            "results/report/runtime.png",
            caption="../workflow/report/runtime.rst",
            category="Runtime",
            labels={"table": "runtime per job", "format": "png"},
        ),
    log:
        "logs/runtime/runtime.log",
    conda:
        "../envs/torch.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=5,
    params:
        benchmarks=get_runtime_benchmarks,
    script:
        "../workflow/scripts/runtime.py"


rule environment:
    input:
        code=get_library_sources("provenance"),
    output:
        txt=report(
            "results/report/environment.txt",
            caption="../workflow/report/environment.rst",
            category="Environment",
            labels={"file": "software and config"},
        ),
    log:
        "logs/environment/environment.log",
    conda:
        "../envs/torch.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=5,
    params:
        run_config=config,
        repo=os.path.relpath(workflow.basedir),
        versions={"snakemake": SNAKEMAKE_VERSION},
    script:
        "../workflow/scripts/environment.py"


# the regression summary of `make mini` (mini_summary.enabled): input, baseline and ours per
# ratio and protocol, paired differences with bootstrap intervals, the paper's deltas
if config["mini_summary"]["enabled"]:

    rule mini_summary:
        input:
            baseline=expand(
                rules.evaluate.output.per_image,
                variant=config["mini_summary"]["baseline"],
                dataset=config["mini_summary"]["dataset"],
            ),
            ours=expand(
                rules.evaluate.output.per_image,
                variant=config["mini_summary"]["ours"],
                dataset=config["mini_summary"]["dataset"],
            ),
            eval_set=expand(
                rules.evaluate.input.eval_set,
                dataset=config["mini_summary"]["dataset"],
            ),
            logs=expand(
                rules.train.output.log_csv,
                variant=[
                    config["mini_summary"]["baseline"],
                    config["mini_summary"]["ours"],
                ],
            ),
            paper=get_resource("paper_results.csv"),
            step_curve=get_resource("step_curve.csv"),
            code=get_library_sources("report.mini", "provenance"),
        output:
            md=report(
                "results/mini/summary.md",
                caption="../workflow/report/mini_summary.rst",
                category="0. Mini summary",
                labels={"file": "summary", "format": "md"},
            ),
            csv=report(
                "results/mini/summary.csv",
                caption="../workflow/report/mini_summary.rst",
                category="0. Mini summary",
                labels={"file": "summary", "format": "csv"},
            ),
            curves=report(
                "results/mini/training_curves.png",
                caption="../workflow/report/mini_curves.rst",
                category="0. Mini summary",
                labels={"file": "learning curves", "format": "png"},
            ),
        log:
            "logs/mini_summary/mini_summary.log",
        conda:
            "../envs/torch.yaml"
        threads: 1
        resources:
            mem_mb=2000,
            runtime=10,
        params:
            summary=config["mini_summary"],
            protocols=config["evaluation"]["protocols"],
            eval_steps=config["evaluation"]["steps"],
            eld_ratio=config["evaluation"]["eld_ratio"],
            methods={
                name: config["variants"][name]["method"]
                for name in (
                    config["mini_summary"]["baseline"],
                    config["mini_summary"]["ours"],
                )
            },
            run_config=config,
            repo=os.path.relpath(workflow.basedir),
        script:
            "../workflow/scripts/mini_summary.py"


##### named targets #####


# one per paper table: `snakemake table4`
for table_name in config["tables"]:

    rule:
        name:
            table_name
        input:
            expand(
                "results/tables/{table}.{ext}",
                table=table_name,
                ext=["csv", "md", "tex", "provenance.json"],
            ),
        localrule: True


# one per variant table: `snakemake eld`
for vtable_name in config["variant_tables"]:

    rule:
        name:
            vtable_name
        input:
            expand(
                "results/tables/{vtable}.{ext}",
                vtable=vtable_name,
                ext=["csv", "md", "tex", "provenance.json"],
            ),
        localrule: True


rule table5b:
    input:
        expand(
            "results/tables/table5b.{ext}", ext=["csv", "md", "tex", "provenance.json"]
        ),
    localrule: True


rule steps:
    input:
        expand("results/plots/steps.{ext}", ext=["png", "pdf"]),
    localrule: True


rule demo:
    input:
        get_demo_output,
    localrule: True


# `make mini`: everything of the mini overlay, with its summary (docs/MINI.md)
rule mini:
    input:
        get_mini_target,
    localrule: True


# the report's own figures and records (they are part of rule all, too)
rule report_figures:
    input:
        get_report_output(),
    localrule: True
