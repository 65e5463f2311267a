"""Words the synthetic account is made of: brands, markets, prompt and query templates."""

BRAND_STEMS = (
    "Acme", "Globex", "Initech", "Umbrella", "Hooli", "Vandelay", "Soylent", "Tyrell",
    "Cyberdyne", "Wonka", "Oscorp", "Aperture", "Monarch", "Nakatomi", "Dunder", "Stark",
    "Wayne", "Pied Piper", "Massive Dynamic", "Gekko", "Bluth", "Prestige", "Sterling", "Vehement",
)
BRAND_SUFFIXES = ("", " Inc.", " Labs", " Cloud", " Group", " Systems")

# (market noun, other ways users name the product)
MARKETS = (
    ("CRM", ("CRM software", "sales pipeline tool", "contact manager")),
    ("project management tool", ("task tracker", "kanban app", "roadmap software")),
    ("email marketing platform", ("newsletter tool", "email automation software")),
    ("accounting software", ("bookkeeping app", "invoicing tool")),
    ("password manager", ("password vault", "credential manager")),
    ("web hosting", ("managed WordPress hosting", "cloud hosting")),
    ("running shoes", ("trail running shoes", "marathon trainers")),
    ("meal kit", ("meal delivery service", "recipe box")),
    ("VPN", ("VPN service", "private browsing app")),
    ("online course platform", ("LMS", "course builder")),
    ("AI search visibility tool", ("GEO tool", "LLM rank tracker")),
)

PROMPT_TEMPLATES = (
    "best {product} for small business",
    "best {product} in {year}",
    "{brand} vs {rival}",
    "is {brand} worth it",
    "cheapest {product} with good reviews",
    "top alternatives to {rival}",
    "how to choose a {product}",
    "{product} with a free trial",
    "most secure {product}",
    "{product} for startups",
    "which {product} do experts recommend",
    "{alias} comparison",
)

FANOUT_TEMPLATES = (
    "top {product} {year}",
    "{rival} pricing {year}",
    "{brand} vs {rival} review",
    "best {alias} cheap",
    "{product} comparison reddit",
    "{rival} alternatives",
    "{alias} ranking",
    "is {brand} legit",
    "{product} pros and cons",
    "{brand} reviews",
)

COMPETITOR_STEMS = (
    "rank", "cite", "signal", "peak", "lumen", "nova", "orbit", "pulse", "zen", "clear",
    "bright", "keyword", "scout", "beacon", "vector", "meta", "north", "sharp", "loop", "spark",
)
COMPETITOR_TAILS = ("ly", "hub", "wise", "base", "stack", "io", "able", "works", "")
TLDS = (".com", ".io", ".ai", ".co")

THIRD_PARTY_HOSTS = (
    "reddit.com", "g2.com", "capterra.com", "forbes.com", "techradar.com", "zapier.com",
    "medium.com", "youtube.com", "en.wikipedia.org", "nerdwallet.com", "pcmag.com",
    "trustradius.com", "quora.com", "aiclicks.io", "rankability.com", "tomsguide.com",
    "theverge.com", "producthunt.com", "softwareadvice.com", "getapp.com",
)

PAGE_TYPES = (
    "Listicle", "Generic Article", "Product Page", "Comparison", "Review", "Homepage",
    "Documentation", "Forum Thread", "Video",
)

OWN_PAGE_PATHS = ("", "/pricing", "/features", "/blog/{slug}", "/docs/{slug}", "/compare/{slug}")

SLUG_WORDS = (
    "getting-started", "best-practices", "buyers-guide", "pricing-explained", "case-study",
    "integrations", "security", "migration-guide", "roadmap", "faq", "benchmarks", "alternatives",
)

TITLE_TEMPLATES = (
    "{n} Best {Product} Tools in {year}",
    "{Product}: The Complete Buyer's Guide",
    "{host} Review — Pricing, Features & Alternatives",
    "Why Teams Switch to {host}",
    "{Product} Compared: What Actually Matters",
    "How We Picked the Best {Product}",
)
