{{ audience_members('ltv_high') }}
