/* must NOT compile: publish wants (channel, type, data) */
import Wirehub from 'wirehub';

const client = new Wirehub('ws://h/ws/', { getToken: async () => 't' });
client.publish('chat/room1', { text: 'hi' });
const state: 'open' = client.subscribe('x').state;
