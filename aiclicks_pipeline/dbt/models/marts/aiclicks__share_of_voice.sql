-- The own brand and each dedicated competitor per snapshot: share of voice, its rank, the gap
-- to the own brand, and the change against the domain's previous snapshot of the same window.
-- Needs brand_rankings; without domains, the own brand's host stays null.
{{ config(enabled=aiclicks_enabled('brand_rankings')) }}

with rankings as (
    select
        *,
        rank() over (
            partition by domain_id, days, snapshot_date order by sov_pct desc
        ) as sov_rank
    from {{ ref('stg_aiclicks__brand_rankings') }}
),

snapshots as (
    select
        domain_id,
        days,
        snapshot_date,
        lag(snapshot_date) over (
            partition by domain_id, days order by snapshot_date
        ) as previous_snapshot_date
    from (select distinct domain_id, days, snapshot_date from rankings) as distinct_snapshots
),

own_brand as (
    select domain_id, days, snapshot_date, sov_pct as own_brand_sov_pct
    from rankings
    where is_own_brand
)

select
    rankings.domain_id,
    rankings.days,
    rankings.snapshot_date,
    rankings.brand_id,
    rankings.brand_name,
    {% if aiclicks_enabled('domains') -%}
    case when rankings.is_own_brand then domains.domain_host else rankings.brand_host end as brand_host,
    {%- else -%}
    rankings.brand_host,
    {%- endif %}
    rankings.is_own_brand,
    rankings.mentions_count,
    rankings.sov_pct,
    rankings.sov_rank,
    rankings.avg_position,
    own_brand.own_brand_sov_pct,
    -- differences of percentages, rounded clear of float noise
    {{ aiclicks_round('rankings.sov_pct - own_brand.own_brand_sov_pct', 6) }} as sov_vs_own_brand_pct,
    snapshots.previous_snapshot_date,
    previous.sov_pct as previous_sov_pct,
    {{ aiclicks_round('rankings.sov_pct - previous.sov_pct', 6) }} as sov_change_pct,
    previous.sov_rank as previous_sov_rank,
    previous.sov_rank - rankings.sov_rank as sov_rank_change,
    rankings.is_latest_snapshot
from rankings
inner join snapshots
    on snapshots.domain_id = rankings.domain_id
    and snapshots.days = rankings.days
    and snapshots.snapshot_date = rankings.snapshot_date
left join rankings as previous
    on previous.domain_id = rankings.domain_id
    and previous.days = rankings.days
    and previous.snapshot_date = snapshots.previous_snapshot_date
    and previous.brand_id = rankings.brand_id
left join own_brand
    on own_brand.domain_id = rankings.domain_id
    and own_brand.days = rankings.days
    and own_brand.snapshot_date = rankings.snapshot_date
{%- if aiclicks_enabled('domains') %}
left join {{ ref('stg_aiclicks__domains') }} as domains
    on domains.domain_id = rankings.domain_id
{%- endif %}
