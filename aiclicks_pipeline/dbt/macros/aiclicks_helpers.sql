{#- A host as the API writes it (`website`, citation `domain`), compared case-blind and
    without a leading `www.`. -#}
{% macro aiclicks_normalize_host(expression) -%}
    case
        when lower({{ expression }}) like 'www.%' then substr(lower({{ expression }}), 5)
        else lower({{ expression }})
    end
{%- endmacro %}

{#- true when `host` is `site` or one of its subdomains (both normalized). -#}
{% macro aiclicks_host_matches(host, site) -%}
    ({{ host }} = {{ site }} or {{ host }} like {{ dbt.concat(["'%.'", site]) }})
{%- endmacro %}

{#- true on the rows of the newest snapshot of their domain and window. -#}
{% macro aiclicks_is_latest_snapshot() -%}
    (snapshot_date = max(snapshot_date) over (partition by domain_id, days))
{%- endmacro %}
