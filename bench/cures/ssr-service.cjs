// Server-side rendering: express with compression() (gzip) renders, for GET /page?n=N&seed=S, a
// catalogue page of N items (generated from a generator seeded by S) with React 19's
// renderToString: a header, a category menu, N item cards (price, rating, tags, variants, specs)
// and a footer. Sends {port} over IPC once listening.
'use strict';
// React's production build, as a deployed service runs it (the development build is several times slower).
process.env.NODE_ENV = 'production';
const compression = require('compression');
const express = require('express');
const React = require('react');
const { renderToString } = require('react-dom/server');
const { prng } = require('./prng.cjs');

const h = React.createElement;
const WORDS = (
  'alpine amber anvil arc aurora basalt beacon birch bolt breeze cedar cinder cobalt coral crest ' +
  'dune ember fern fjord flint frost garnet glacier granite harbor hazel indigo iris jade juniper ' +
  'kestrel lagoon lantern maple marble meadow mesa nimbus oak onyx opal orchid pebble pine prism ' +
  'quartz raven reef ridge sable sage shale sierra slate spruce summit tide timber topaz tundra willow'
).split(' ');
const CATEGORIES = [
  'Tents',
  'Packs',
  'Boots',
  'Jackets',
  'Stoves',
  'Lamps',
  'Ropes',
  'Maps',
  'Knives',
  'Bottles',
];

function makeItems(seed, n) {
  const rand = prng(seed);
  const word = () => WORDS[Math.floor(rand() * WORDS.length)];
  const sentence = (k) => Array.from({ length: k }, word).join(' ');
  return Array.from({ length: n }, (_, i) => ({
    id: `${seed}-${i}`,
    name: `${word()} ${word()} ${CATEGORIES[i % CATEGORIES.length].slice(0, -1).toLowerCase()}`,
    category: CATEGORIES[i % CATEGORIES.length],
    description: `${sentence(8 + Math.floor(rand() * 20))}.`,
    priceCents: 500 + Math.floor(rand() * 50000),
    discount: rand() < 0.2 ? Math.floor(rand() * 40) : 0,
    rating: Math.round(rand() * 50) / 10,
    reviews: Math.floor(rand() * 2000),
    tags: Array.from({ length: 1 + Math.floor(rand() * 5) }, word),
    variants: Array.from({ length: 1 + Math.floor(rand() * 4) }, (_, v) => ({
      sku: `${seed}-${i}-${v}`,
      label: `${word()} / ${['S', 'M', 'L', 'XL'][v]}`,
      inStock: rand() < 0.8,
    })),
    specs: { weight: `${(rand() * 5).toFixed(2)} kg`, material: word(), origin: word() },
  }));
}

const money = (cents) => `$${(cents / 100).toFixed(2)}`;

function Price({ cents, discount }) {
  if (!discount) return h('span', { className: 'price' }, money(cents));
  return h(
    'span',
    { className: 'price sale' },
    h('s', null, money(cents)),
    ' ',
    h('strong', null, money(Math.round((cents * (100 - discount)) / 100))),
    h('em', null, ` -${discount}%`),
  );
}

function Rating({ rating, reviews }) {
  const full = Math.round(rating);
  return h(
    'span',
    { className: 'rating', title: `${rating} of 5` },
    Array.from({ length: 5 }, (_, i) => h('i', { key: i, className: i < full ? 'star on' : 'star' }, '*')),
    h('small', null, ` (${reviews} reviews)`),
  );
}

function ItemCard({ item }) {
  return h(
    'article',
    { className: 'card', id: `item-${item.id}`, 'data-category': item.category },
    h('h3', null, h('a', { href: `/items/${item.id}` }, item.name)),
    h('p', { className: 'description' }, item.description),
    h(Price, { cents: item.priceCents, discount: item.discount }),
    h(Rating, { rating: item.rating, reviews: item.reviews }),
    h(
      'ul',
      { className: 'tags' },
      item.tags.map((t, i) => h('li', { key: i }, h('a', { href: `/tags/${t}` }, `#${t}`))),
    ),
    h(
      'table',
      { className: 'variants' },
      h(
        'tbody',
        null,
        item.variants.map((v) =>
          h(
            'tr',
            { key: v.sku, className: v.inStock ? 'in-stock' : 'sold-out' },
            h('td', null, v.sku),
            h('td', null, v.label),
            h('td', null, v.inStock ? 'in stock' : 'sold out'),
          ),
        ),
      ),
    ),
    h(
      'dl',
      { className: 'specs' },
      Object.entries(item.specs).map(([k, v]) =>
        h(React.Fragment, { key: k }, h('dt', null, k), h('dd', null, v)),
      ),
    ),
  );
}

function Page({ items, seed }) {
  return h(
    'html',
    { lang: 'en' },
    h('head', null, h('meta', { charSet: 'utf-8' }), h('title', null, `Catalogue ${seed}`)),
    h(
      'body',
      null,
      h(
        'header',
        null,
        h('h1', null, 'Outdoor catalogue'),
        h(
          'nav',
          null,
          h(
            'ul',
            null,
            CATEGORIES.map((c) => h('li', { key: c }, h('a', { href: `/c/${c.toLowerCase()}` }, c))),
          ),
        ),
      ),
      h(
        'main',
        null,
        h('p', null, `${items.length} items`),
        h(
          'section',
          { className: 'grid' },
          items.map((item) => h(ItemCard, { key: item.id, item })),
        ),
      ),
      h('footer', null, h('small', null, `Rendered for page ${seed}`)),
    ),
  );
}

const app = express();
app.use(compression());
app.get('/page', (req, res) => {
  const n = Math.min(Math.max(Number(req.query.n) || 50, 1), 5000);
  const seed = Number(req.query.seed) || 0;
  res.type('html').send(`<!DOCTYPE html>${renderToString(h(Page, { items: makeItems(seed, n), seed }))}`);
});
const server = app.listen(0, '127.0.0.1', () => process.send({ port: server.address().port }));
server.keepAliveTimeout = 60_000;
