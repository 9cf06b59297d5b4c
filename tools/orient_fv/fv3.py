import os
W=os.environ.get("ORIENT_WORK", "/tmp/orient-fv")
import numpy as np, cv2, sys, time, os
from load import *
from sklearn.decomposition import PCA
from sklearn.mixture import GaussianMixture
rng=np.random.RandomState(0)
meta,F,th,la=load()
n=len(meta); grp,test,plain=meta[:,0],meta[:,1],meta[:,2]
K=int(sys.argv[1]); D=int(sys.argv[2]); SC=sys.argv[3]; REG=sys.argv[4]
STEP=8; S=128
cache=W+'/vlds.npy'
XY=[]; 
for size in (16,24):
    h=size//2
    for y in range(h,S-h+1,STEP):
        for x in range(h,S-h+1,STEP): XY.append((x/S,y/S,size))
XY=np.array(XY,np.float32)
if not os.path.exists(cache):
    q=np.fromfile(W+'/vlds.u8',np.uint8).reshape(n,4,421,130)
    XYv=q[0,0,:,128:].astype(np.float32)/S
    np.save(cache,(q[:,:,:,:128].astype(np.float16)/255))
    np.save(W+'/vlxy.npy',XYv)
if False:
    sift=cv2.SIFT_create()
    kps=[cv2.KeyPoint(float(x*S),float(y*S),float(s),0) for x,y,s in XY]
    DSA=np.zeros((n,4,len(XY),128),np.float16)
    for i in range(n):
        for k in range(4):
            g=cv2.cvtColor(np.ascontiguousarray(turned(th[i],k)),cv2.COLOR_RGB2GRAY)
            _,d=sift.compute(g,kps)
            DSA[i,k]=np.sqrt(d/(d.sum(1,keepdims=True)+1e-6))
    np.save(cache,DSA)
DSA=np.load(cache); XY[:,:2]=np.load(W+'/vlxy.npy')
sel=np.ones(len(XY),bool)
if SC=='small': sel=XY[:,2]==16
if SC=='large': sel=XY[:,2]==24
xy=XY[sel]
tr=np.where(test==0)[0]
samp=np.concatenate([DSA[i,k][sel][rng.choice(sel.sum(),20,replace=False)] for i in tr for k in range(4)]).astype(np.float32)
pca=PCA(D,random_state=0).fit(samp)
gmm=GaussianMixture(K,covariance_type='diag',random_state=0,max_iter=100).fit(pca.transform(samp))
mu,var,w=gmm.means_,gmm.covariances_,gmm.weights_; sd=np.sqrt(var)
R=[np.ones(len(xy),bool)]
if 'r' in REG:
    for a in range(3): R.append((xy[:,1]>=a/3)&(xy[:,1]<(a+1)/3))
if 'c' in REG:
    for a in range(3): R.append((xy[:,0]>=a/3)&(xy[:,0]<(a+1)/3))
if 'q' in REG:
    for a in range(2):
        for b in range(2): R.append((xy[:,1]>=a/2)&(xy[:,1]<(a+1)/2)&(xy[:,0]>=b/2)&(xy[:,0]<(b+1)/2))
def fisher(x):
    q=gmm.predict_proba(x); out=[]
    for r in R:
        xr=x[r]; qr=q[r]; N=len(xr)
        dx=(xr[:,None,:]-mu[None])/sd[None]
        u=(qr[:,:,None]*dx).sum(0)/(N*np.sqrt(w)[:,None])
        v=(qr[:,:,None]*(dx**2-1)).sum(0)/(N*np.sqrt(2*w)[:,None])
        f=np.concatenate([u.ravel(),v.ravel()]); f=np.sign(f)*np.sqrt(np.abs(f)); f/=np.linalg.norm(f)+1e-9
        out.append(f)
    return np.concatenate(out)
FV=np.zeros((n,4,len(R)*2*K*D),np.float32)
for i in range(n):
    for k in range(4): FV[i,k]=fisher(pca.transform(DSA[i,k][sel].astype(np.float32)))
np.save(W+'/vlfv_%d_%d_%s_%s.npy'%(K,D,SC,REG),FV)
print('done',time.time(),file=sys.stderr)
