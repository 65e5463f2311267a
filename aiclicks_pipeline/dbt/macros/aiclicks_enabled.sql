{#- Whether the models reading a source table are built: var aiclicks_enabled_<table>, true
    unless set. `aiclicks-pipeline transform` sets it false for each table the dataset lacks
    (a sync of some resources only); in your own project, set it in dbt_project.yml's vars.
    citations__models is dlt's child table of citations: it follows its parent. -#}
{% macro aiclicks_enabled(table) -%}
    {%- set enabled = var('aiclicks_enabled_' ~ table, true) -%}
    {%- if table == 'citations__models' -%}
        {%- set enabled = enabled and var('aiclicks_enabled_citations', true) -%}
    {%- endif -%}
    {{ return(enabled) }}
{%- endmacro %}

{#- aiclicks__citation_sources classifies each cited host as the domain's own, a competitor's or
    a third party's: it needs the citations, the domains and the brand rankings
    (aiclicks__model_performance reads it for the URLs each channel cited). -#}
{% macro aiclicks_citation_sources_enabled() -%}
    {{ return(aiclicks_enabled('citations') and aiclicks_enabled('domains')
              and aiclicks_enabled('brand_rankings')) }}
{%- endmacro %}
