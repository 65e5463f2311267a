-- One row per domain and day: the four daily series side by side. mentions and citations are
-- sparse (a day without responses has no row): such a day stays null here, never zero. Built from
-- whichever series are loaded (at least one); a series not loaded is null on every row, and
-- domain_name is null when domains is not loaded.
{%- set series = [
    ('visibility_daily', 'visibility', 'visibility_pct', aiclicks_type_double()),
    ('mentions_daily', 'mentions', 'mentions_count', dbt.type_bigint()),
    ('citability_daily', 'citability', 'citability_pct', aiclicks_type_double()),
    ('citations_daily', 'citations', 'citations_count', dbt.type_bigint()),
] %}
{%- set loaded = [] %}
{%- for table, alias, column, type in series if aiclicks_enabled(table) %}
    {%- do loaded.append((table, alias, column, type)) %}
{%- endfor %}
{{ config(enabled=loaded | length > 0) }}

with
{%- for table, alias, column, type in loaded %}
{{ alias }} as (
    select * from {{ ref('stg_aiclicks__' ~ table) }}
),
{% endfor %}
domain_days as (
    select distinct domain_id, date_day
    from (
        {%- for table, alias, column, type in loaded %}
        {% if not loop.first %}union all
        {% endif %}select domain_id, date_day from {{ alias }}
        {%- endfor %}
    ) as any_series
)

select
    domain_days.domain_id,
    {% if aiclicks_enabled('domains') -%}
    domains.domain_name,
    {%- else -%}
    cast(null as {{ dbt.type_string() }}) as domain_name,
    {%- endif %}
    domain_days.date_day,
    {%- for table, alias, column, type in series %}
    {% if (table, alias, column, type) in loaded -%}
    {{ alias }}.{{ column }}
    {%- else -%}
    cast(null as {{ type }}) as {{ column }}
    {%- endif %}{{ ',' if not loop.last }}
    {%- endfor %}
from domain_days
{%- if aiclicks_enabled('domains') %}
left join {{ ref('stg_aiclicks__domains') }} as domains
    on domains.domain_id = domain_days.domain_id
{%- endif %}
{%- for table, alias, column, type in loaded %}
left join {{ alias }}
    on {{ alias }}.domain_id = domain_days.domain_id and {{ alias }}.date_day = domain_days.date_day
{%- endfor %}
