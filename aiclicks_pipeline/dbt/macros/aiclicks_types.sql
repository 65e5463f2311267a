{#- Column types the staging models cast to, the same on every warehouse.
    dbt.type_float() is a 4-byte REAL on DuckDB, so doubles get their own macro. -#}

{% macro aiclicks_type_double() -%}
    {{ return(adapter.dispatch('aiclicks_type_double', 'aiclicks')()) }}
{%- endmacro %}

{% macro default__aiclicks_type_double() -%}
    double precision
{%- endmacro %}

{% macro bigquery__aiclicks_type_double() -%}
    float64
{%- endmacro %}

{% macro snowflake__aiclicks_type_double() -%}
    float
{%- endmacro %}


{#- An instant: dlt loads `timestamp with time zone` (DuckDB, Postgres), TIMESTAMP_TZ
    (Snowflake) or TIMESTAMP (BigQuery, always UTC); casting to it changes no value. -#}

{% macro aiclicks_type_timestamp_tz() -%}
    {{ return(adapter.dispatch('aiclicks_type_timestamp_tz', 'aiclicks')()) }}
{%- endmacro %}

{% macro default__aiclicks_type_timestamp_tz() -%}
    timestamp with time zone
{%- endmacro %}

{% macro bigquery__aiclicks_type_timestamp_tz() -%}
    timestamp
{%- endmacro %}

{% macro snowflake__aiclicks_type_timestamp_tz() -%}
    timestamp_tz
{%- endmacro %}


{#- round(expression, places) of a double: PostgreSQL rounds only numeric to places. -#}

{% macro aiclicks_round(expression, places) -%}
    {{ return(adapter.dispatch('aiclicks_round', 'aiclicks')(expression, places)) }}
{%- endmacro %}

{% macro default__aiclicks_round(expression, places) -%}
    round({{ expression }}, {{ places }})
{%- endmacro %}

{% macro postgres__aiclicks_round(expression, places) -%}
    cast(round(cast({{ expression }} as numeric), {{ places }}) as {{ aiclicks_type_double() }})
{%- endmacro %}
