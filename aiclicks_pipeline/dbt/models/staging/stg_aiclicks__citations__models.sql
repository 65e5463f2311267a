-- the model slugs (docs/api-notes.md, Reading: model naming) that cited a URL: dlt's child table joined to its parent row for
-- the citation's key; every snapshot, is_latest_snapshot selects the newest
with cited_by as (
    select distinct
        cast(citations.domain_id as {{ dbt.type_string() }}) as domain_id,
        cast(citations.days as {{ dbt.type_bigint() }}) as days,
        cast(citations.snapshot_date as date) as snapshot_date,
        cast(citations.url as {{ dbt.type_string() }}) as cited_url,
        cast(models.value as {{ dbt.type_string() }}) as model_slug
    from {{ source('aiclicks', 'citations__models') }} as models
    inner join {{ source('aiclicks', 'citations') }} as citations
        on models._dlt_parent_id = citations._dlt_id
)

select
    domain_id,
    days,
    snapshot_date,
    cited_url,
    model_slug,
    {{ aiclicks_is_latest_snapshot() }} as is_latest_snapshot
from cited_by
