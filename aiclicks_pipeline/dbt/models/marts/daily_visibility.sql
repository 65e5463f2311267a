-- One row per domain and day: the four daily series side by side. mentions and citations are
-- sparse (a day without responses has no row): such a day stays null here, never zero.
with visibility as (
    select * from {{ ref('stg_aiclicks__visibility_daily') }}
),

mentions as (
    select * from {{ ref('stg_aiclicks__mentions_daily') }}
),

citability as (
    select * from {{ ref('stg_aiclicks__citability_daily') }}
),

citations as (
    select * from {{ ref('stg_aiclicks__citations_daily') }}
),

domain_days as (
    select distinct domain_id, date_day
    from (
        select domain_id, date_day from visibility
        union all
        select domain_id, date_day from mentions
        union all
        select domain_id, date_day from citability
        union all
        select domain_id, date_day from citations
    ) as any_series
)

select
    domain_days.domain_id,
    domains.domain_name,
    domain_days.date_day,
    visibility.visibility_pct,
    mentions.mentions_count,
    citability.citability_pct,
    citations.citations_count
from domain_days
left join {{ ref('stg_aiclicks__domains') }} as domains
    on domains.domain_id = domain_days.domain_id
left join visibility
    on visibility.domain_id = domain_days.domain_id and visibility.date_day = domain_days.date_day
left join mentions
    on mentions.domain_id = domain_days.domain_id and mentions.date_day = domain_days.date_day
left join citability
    on citability.domain_id = domain_days.domain_id and citability.date_day = domain_days.date_day
left join citations
    on citations.domain_id = domain_days.domain_id and citations.date_day = domain_days.date_day
