"""The rendering layer, below the features: the resume, the site's templates and cached page answers.

`resume` reads and validates ``resume.json``; `languages` finds its
translations (``resume.de.json``) and the site's words in each language;
`templates` holds the Jinja2
environment, its filters and the values every template knows as ``site``;
`render` renders a page per request (the blog, the contact form's
answers, /stats); `responses` answers a rendered body with an ETag,
gzip when the client takes it and a per-process memo. Features import
this package; it imports only `service.core`.
"""
