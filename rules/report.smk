rule table:
    input:
        summaries=get_table_summaries,
        paper=get_resource("paper_results.csv"),
        code=get_library_sources("tables"),
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
        table=get_table,
        variants=get_table_variants,
    script:
        "../workflow/scripts/table.py"


rule step_plot:
    input:
        unpack(get_step_plot_summaries),
        paper=get_resource("step_curve.csv"),
        code=get_library_sources("plots"),
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
    script:
        "../workflow/scripts/step_plot.py"


rule variant_table:
    input:
        summaries=get_variant_table_summaries,
        code=get_library_sources("tables"),
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
        variants=list(config["variants"]),
        variant_cfgs=config["variants"],
    script:
        "../workflow/scripts/variant_table.py"


rule cost_table:
    input:
        paper=get_resource("paper_cost.csv"),
        code=get_library_sources("cost", "tables", "nets"),
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
                ext=["csv", "md", "tex"],
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
                ext=["csv", "md", "tex"],
            ),
        localrule: True


rule table5b:
    input:
        expand("results/tables/table5b.{ext}", ext=["csv", "md", "tex"]),
    localrule: True


rule steps:
    input:
        expand("results/plots/steps.{ext}", ext=["png", "pdf"]),
    localrule: True


rule demo:
    input:
        get_demo_output,
    localrule: True
