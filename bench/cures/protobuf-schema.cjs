// The messages of protobuf-service.cjs, defined in code with protobufjs (no .proto file): a batch
// of orders in, a receipt out. Shared with the load generator.
'use strict';
const { Enum, Field, MapField, Root, Type } = require('protobufjs');

const root = new Root().define('shop');
root.add(new Enum('Status', { PENDING: 0, PAID: 1, SHIPPED: 2, CANCELLED: 3 }));
root.add(
  new Type('Address')
    .add(new Field('street', 1, 'string'))
    .add(new Field('city', 2, 'string'))
    .add(new Field('zip', 3, 'string'))
    .add(new Field('country', 4, 'string')),
);
root.add(
  new Type('Customer')
    .add(new Field('id', 1, 'uint32'))
    .add(new Field('name', 2, 'string'))
    .add(new Field('email', 3, 'string'))
    .add(new Field('address', 4, 'Address'))
    .add(new Field('tags', 5, 'string', 'repeated')),
);
root.add(
  new Type('LineItem')
    .add(new Field('sku', 1, 'string'))
    .add(new Field('title', 2, 'string'))
    .add(new Field('quantity', 3, 'uint32'))
    .add(new Field('priceCents', 4, 'uint32'))
    .add(new MapField('attributes', 5, 'string', 'string')),
);
root.add(
  new Type('Order')
    .add(new Field('id', 1, 'uint32'))
    .add(new Field('customer', 2, 'Customer'))
    .add(new Field('items', 3, 'LineItem', 'repeated'))
    .add(new Field('status', 4, 'Status'))
    .add(new Field('note', 5, 'string'))
    .add(new Field('attachment', 6, 'bytes'))
    .add(new Field('createdAtMs', 7, 'double')),
);
root.add(
  new Type('OrderBatch')
    .add(new Field('batchId', 1, 'uint32'))
    .add(new Field('orders', 2, 'Order', 'repeated')),
);
root.add(
  new Type('OrderResult')
    .add(new Field('id', 1, 'uint32'))
    .add(new Field('totalCents', 2, 'double'))
    .add(new Field('itemCount', 3, 'uint32'))
    .add(new Field('flagged', 4, 'bool')),
);
root.add(
  new Type('Receipt')
    .add(new Field('batchId', 1, 'uint32'))
    .add(new Field('totalCents', 2, 'double'))
    .add(new Field('results', 3, 'OrderResult', 'repeated'))
    .add(new Field('review', 4, 'Order', 'repeated')),
);
root.resolveAll();

module.exports = {
  OrderBatch: root.lookupType('shop.OrderBatch'),
  Receipt: root.lookupType('shop.Receipt'),
  Status: root.lookupEnum('shop.Status'),
};
