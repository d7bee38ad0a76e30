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


rule steps:
    input:
        expand("results/plots/steps.{ext}", ext=["png", "pdf"]),
    localrule: True


rule demo:
    input:
        get_demo_output,
    localrule: True
