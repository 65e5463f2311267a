{#- Logs which of the package's source tables exist in the warehouse, as
    `aiclicks_loaded_tables: ["domains", ...]`. `aiclicks-pipeline transform` runs it
    (`dbt run-operation aiclicks_loaded_tables`) and sets aiclicks_enabled_<table> false for the
    others, so a sync of some resources only still builds what it can. Works on every adapter:
    it asks the adapter for each source's relation. -#}
{% macro aiclicks_loaded_tables() %}
    {%- set found = [] -%}
    {%- if execute -%}
        {%- for node in graph.sources.values()
                if node.package_name == 'aiclicks' and node.source_name == 'aiclicks' -%}
            {%- set relation = adapter.get_relation(
                database=node.database, schema=node.schema, identifier=node.identifier) -%}
            {%- if relation is not none -%}
                {%- do found.append(node.name) -%}
            {%- endif -%}
        {%- endfor -%}
    {%- endif -%}
    {%- do log('aiclicks_loaded_tables: ' ~ tojson(found | sort), info=true) -%}
    {{ return(found) }}
{% endmacro %}
